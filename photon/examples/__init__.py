"""Examples shipped with Photon: `projections/` holds the example projection files."""
