"""Write `photon.properties.example`: every configuration key with its default and meaning.

python -m photon.properties_example > photon.properties.example
"""

from __future__ import annotations

import textwrap

from photon.core.config import CORE_SETTINGS, all_settings
from photon.core.setting import Setting

HEADER = """\
# photon.properties: Photon's configuration, one key=value per line (Java .properties syntax).
# Copy to photon.properties in the working directory and uncomment what you change.
# Precedence: command line (-rest.port 3000) > environment (PHOTON_REST_PORT=3000)
#             > ./photon.properties > the defaults shown here.
"""


def _entry(setting: Setting) -> list[str]:
    lines = [f"# {line}" for line in textwrap.wrap(setting.help, 100)]
    if setting.aliases:
        lines.append(f"# (also accepted as: {', '.join(setting.aliases)})")
    if callable(setting.default):
        lines.append("# default: computed at start")
    value = "" if callable(setting.default) or setting.default is None else setting.default
    lines.append(f"#{setting.key}={value}")
    return [*lines, ""]


def render() -> str:
    settings = all_settings()
    core = [s.key for s in CORE_SETTINGS]
    lines = [HEADER, "# ---- server ----"]
    for key in core:
        lines.extend(_entry(settings[key]))
    lines.append("# ---- storage backends ----")
    for key in sorted(set(settings) - set(core)):
        lines.extend(_entry(settings[key]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
