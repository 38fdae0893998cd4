"""The `photon` command line: a click group whose default command is `serve`."""
