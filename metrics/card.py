"""Model cards: `newtonbench score --card card.yaml` (issue 5).

A card is a YAML mapping describing the scored model; it travels into summary.json["model"]["card"]
and onto the leaderboard page. Known keys are type-checked; unknown keys are allowed but must be
strings (so that nothing the page cannot print safely gets in):

    name: Wan2.1-I2V-14B            # string; the model name unless --model overrides it
    link: https://...               # string (http, https)
    parameters: 14B                 # string or number
    resolution: 832x480             # "WxH" string or [W, H]
    fps: 16                         # number > 0
    frames: 81                      # integer > 0
    sampling: {steps: 50, guidance: 5.0, scheduler: unipc}   # mapping of scalars
    date: 2025-02-25                # ISO date (YAML date or string)
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

from newtonbench.errors import InvalidValueError

KNOWN = ("name", "link", "parameters", "resolution", "fps", "frames", "sampling", "date")


def _bad(path, key, value, allowed) -> InvalidValueError:
    return InvalidValueError(f"{path}: card field {key}={value!r} is invalid; allowed: {allowed}")


def validate_card(card: dict, path: str = "card") -> dict:
    """Return a JSON-ready copy of `card`, or raise InvalidValueError naming the bad field."""
    if not isinstance(card, dict):
        raise InvalidValueError(f"{path}: a card is a YAML mapping of fields; got {type(card).__name__}")
    out: dict = {}
    for key, value in card.items():
        if not isinstance(key, str):
            raise _bad(path, key, value, "string keys")
        if value is None:
            continue
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                raise _bad(path, key, value, "a non-empty string")
            out[key] = value.strip()
        elif key == "link":
            if not isinstance(value, str) or not re.match(r"^https?://\S+$", value):
                raise _bad(path, key, value, "an http(s) URL")
            out[key] = value
        elif key == "parameters":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise _bad(path, key, value, "a string like '14B' or a number")
            out[key] = value
        elif key == "resolution":
            if isinstance(value, str) and re.match(r"^\d+x\d+$", value):
                out[key] = value
            elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
                out[key] = f"{value[0]}x{value[1]}"
            else:
                raise _bad(path, key, value, "'WxH' or [W, H]")
        elif key == "fps":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise _bad(path, key, value, "a number > 0")
            out[key] = value
        elif key == "frames":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _bad(path, key, value, "an integer > 0")
            out[key] = value
        elif key == "sampling":
            if isinstance(value, str):
                out[key] = value
            elif isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in value.items()
            ):
                out[key] = dict(value)
            else:
                raise _bad(path, key, value, "a string or a mapping of names to scalars")
        elif key == "date":
            if isinstance(value, (_dt.date, _dt.datetime)):
                out[key] = value.isoformat()
            elif isinstance(value, str):
                try:
                    _dt.date.fromisoformat(value[:10])
                except ValueError:
                    raise _bad(path, key, value, "an ISO date YYYY-MM-DD") from None
                out[key] = value
            else:
                raise _bad(path, key, value, "an ISO date YYYY-MM-DD")
        else:
            if not isinstance(value, str):
                raise _bad(path, key, value, f"a string (unknown keys must be strings; known: {', '.join(KNOWN)})")
            out[key] = value
    return out


def load_card(path: str | Path) -> dict:
    """Read and validate a YAML card; InvalidValueError (one line) on anything wrong."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise InvalidValueError(f"card {str(path)!r} cannot be read ({e.strerror})") from e
    except yaml.YAMLError as e:
        raise InvalidValueError(f"card {str(path)!r} is not valid YAML ({e.__class__.__name__})") from e
    return validate_card(data, str(path))
