"""Reading JSON that someone else wrote: the one parser for request bodies.

``json.loads`` alone lets hostile text through as exceptions nobody expects: nesting deeper than
the interpreter's recursion limit raises ``RecursionError``, an integer of more than
``sys.get_int_max_str_digits()`` digits (4300) raises a plain ``ValueError``, and a lone surrogate
(``"\\ud800"``) is accepted as a string that cannot be encoded as UTF-8 again, so that it fails
later, wherever it is written. Each is answered here as a ``BadRequestError`` with the code
``invalid_json`` (HTTP 400) that says which rule the text broke. Nesting is limited to
``MAX_DEPTH`` levels, far more than any body of the API needs, so the answer does not depend on how
deep the interpreter's stack already is. (Strings must be valid Unicode as in I-JSON, RFC 7493
section 2.1.)"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalicelib.domain.errors import BadRequestError

MAX_DEPTH = 32


def _invalid(message: str, details: dict[str, Any]) -> BadRequestError:
    return BadRequestError(message, details, code="invalid_json")


def _too_deep() -> BadRequestError:
    return _invalid(f"the body is nested more than {MAX_DEPTH} levels deep", {"max_depth": MAX_DEPTH})


def _check_text(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(
            "the body has a string that is not valid Unicode (a lone surrogate escape such as \\ud800)", {}
        ) from None


def _check(data: Any) -> None:
    """Depth and strings, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise _too_deep()
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def parse_json(raw: bytes | str, *, exact_numbers: bool = False) -> Any:
    """The value ``raw`` holds (UTF-8, -16 or -32), or ``BadRequestError`` ``invalid_json`` saying why not.

    ``exact_numbers``: every number becomes a ``Decimal`` (never a float, no digit limit), and the
    non-JSON literals ``NaN``/``Infinity`` that Python's json accepts become non-finite decimals, for
    the caller to refuse where they stand (usage events refuse them one by one)."""
    try:
        if exact_numbers:
            from decimal import Decimal

            data = json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
        else:
            data = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as e:
        raise _invalid("the body is not valid JSON", {"reason": str(e)}) from None
    except UnicodeDecodeError:
        raise _invalid("the body is not valid JSON: it is not UTF-8 text", {}) from None
    except ValueError:  # what is left is int()'s limit on digits (sys.set_int_max_str_digits)
        limit = sys.get_int_max_str_digits()
        raise _invalid(f"the body has a number of more than {limit} digits", {"max_digits": limit}) from None
    _check(data)
    return data
