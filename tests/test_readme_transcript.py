"""The README's curl session, run against a fresh `photon` server: the commands it shows answer what it shows.

Each `$ ` line (with its continuation lines) runs in one bash session, so `TOKEN=...` carries on;
the lines after it are the expected answer. In the expected text `...` stands for anything, and
event ids and times (which change from run to run) match any id and time.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from pathlib import Path

from photon.projections.folder import EXAMPLES_FOLDER

from .live import ServerProcess

README = (Path(__file__).parent.parent / "README.md").read_text()
MARK = "@@photon-transcript@@"


def transcript() -> list[tuple[str, str]]:
    section = README.split("## Running the server", 1)[1]
    block = re.search(r"```\n(\$ curl.*?)```", section, re.S)
    assert block, "the README's curl session is missing"
    steps: list[tuple[str, list[str]]] = []
    command: list[str] | None = None
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            command = [line[2:]]
            steps.append(("", command))
        elif command is not None and (command[-1].endswith("\\") or "\n".join(command).count("'") % 2):
            command.append(line)
        else:
            command = None
            text, lines = steps[-1]
            steps[-1] = (text + line + "\n", lines)
    return [("\n".join(lines), expected) for expected, lines in steps]


def pattern(expected: str) -> re.Pattern[str]:
    """`...` after `,` `{` `[` `]` `}` elides fields (anything); elsewhere it is the rest of one value."""
    parts = expected.strip().split("...")
    text = re.escape(parts[0])
    for before, part in itertools.pairwise(parts):
        text += (".*?" if before[-1:] in ",{[]}" else '[^"]*') + re.escape(part)
    text = re.sub(r"[0-9a-f]{8}\\-[0-9a-f]{4}\\-[0-9a-f]{4}\\-[0-9a-f]{4}\\-[0-9a-f]{12}", "[0-9a-f-]{36}", text)
    text = re.sub(r'"event\\-time":\d{13}', '"event-time":\\\\d{13}', text)
    return re.compile(text + r"\Z", re.S)


def run_session(commands: list[str], port: str) -> list[str]:
    script = "set -u\n" + "".join(
        f"echo '{MARK}'\n{command.replace('localhost:3000', f'127.0.0.1:{port}')}\necho\n" for command in commands
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [part.strip() for part in result.stdout.split(MARK + "\n")[1:]]


def test_the_readme_curl_session_answers_as_shown(tmp_path: Path) -> None:
    steps = transcript()
    assert len(steps) >= 8 and any(cmd.startswith("TOKEN=") for cmd, _ in steps)
    server = ServerProcess(
        tmp_path,
        ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-projections.path", str(EXAMPLES_FOLDER)],
    )
    try:
        port = server.url.rsplit(":", 1)[1]
        answers = run_session([command for command, _ in steps], port)
        token = next(command for command, _ in steps if command.startswith("TOKEN="))
        deadline = time.monotonic() + 30
        while True:
            # A projection folds just after the append is acknowledged: a session typed by hand sees
            # the value at once, a script may be faster. So reads that do not match yet are re-run
            # for a while (appends and deletes are not).
            mismatched = [i for i, (_, expected) in enumerate(steps) if not pattern(expected).match(answers[i])]
            reads = [i for i in mismatched if "-X" not in steps[i][0]]
            if not mismatched or reads != mismatched or time.monotonic() > deadline:
                break
            time.sleep(0.2)
            again = run_session([token, *(steps[i][0] for i in reads)], port)[1:]
            for i, answer in zip(reads, again, strict=True):
                answers[i] = answer
        for i, (command, expected) in enumerate(steps):
            assert pattern(expected).match(answers[i]), (
                f"$ {command}\nREADME shows:\n{expected}\nserver said:\n{answers[i]}"
            )
    finally:
        server.terminate()
