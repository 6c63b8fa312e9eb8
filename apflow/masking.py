"""Masking of secrets in run logs and errors: one precompiled regex per run, applied per line.

What is replaced by `****`:
- every known secret value (longest first; values shorter than 4 characters are skipped,
  they would mask half the log),
- the token after `Bearer ` (and after `Basic `/`Token ` when it is the value of a secret key),
- the password in a URL (`scheme://user:pass@host` -> `scheme://user:****@host`),
- the value of a secret-looking key in `KEY=value`, `"key": "value"` and `key: value`.

Limits, by design: masking works on the text it is given. A secret split across two pieces of
text is not recognised; the run log sink (apflow.logsink) therefore masks whole lines, so a
secret is only missed if a process writes it across a line break or a very long line. An
unquoted value ends at whitespace or at one of ``,;&)]}``: `password: two words` hides only
`two`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "****"
MIN_SECRET_LENGTH = 4

def _ci(pattern: str) -> str:
    """`pattern` with each ASCII letter made case-insensitive: `ab` -> `[aA][bB]`.

    Cheaper than re.IGNORECASE, which costs the whole pattern, not just its keywords.
    """
    return re.sub(r"[a-z]", lambda m: f"[{m[0]}{m[0].upper()}]", pattern)


# "auth" but not "author"/"authority" (still "authorization"): AUTHOR=... is not a secret.
_SECRET_WORD = _ci(
    r"(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|auth(?!or(?!iz))|credential"
    r"|private[_-]?key|access[_-]?key)"
)
_SECRET_KEY_RE = re.compile(_SECRET_WORD)

# Each branch starts at a boundary (a lookbehind) and uses atomic groups or possessive
# quantifiers where it may fail, so a 1 MB line without spaces is scanned in linear time.
_KEY_CHARS = r"[\w.-]"
_KEY_VALUE = (
    rf"(?<!{_KEY_CHARS})(?P<kv_key>(?>{_KEY_CHARS}*?{_SECRET_WORD}{_KEY_CHARS}*+))"
    r"(?P<kv_sep>[\"']?[ \t]*[:=][ \t]*)"
    rf"(?P<kv_scheme>{_ci('(?:bearer|basic|token)')}[ \t]+)?"
    r"(?:\"(?P<kv_dq>(?:[^\"\\\n]|\\.)*+)\"|'(?P<kv_sq>[^'\n]*+)'"
    r"|(?P<kv_bare>[^\s\"',;&)\]}]++))"
)
_BEARER = rf"(?<![\w-])(?P<b_word>{_ci('bearer')}[ \t]+)(?P<b_token>[\w\-.~+/]++=*)"
_URL_USERINFO = (
    r"(?<![\w+.-])(?P<u_head>[a-zA-Z][\w+.-]*+://[^\s:/@]++:)(?P<u_pass>[^\s@/]++)@"
)
# Every match of the patterns above contains one of these (in lower case) and lies within one
# line: lines without any are skipped, which makes masking ordinary output cheap.
_TRIGGERS = ("pass", "secret", "token", "api", "auth", "credential", "private", "access",
             "bearer", "://")

_PATTERN_CACHE: dict[tuple[str, ...], tuple[re.Pattern[str], re.Pattern[str]]] = {}


def is_secret_key(key: str) -> bool:
    """True if a variable or field named `key` probably holds a secret."""
    return _SECRET_KEY_RE.search(key) is not None


def _compile(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(the masking pattern, the trigger pattern that finds lines worth masking)."""
    branches = [re.escape(s) for s in secrets]
    full = "|".join(([f"(?P<secret>{'|'.join(branches)})"] if branches else [])
                    + [_URL_USERINFO, _BEARER, _KEY_VALUE])
    triggers = [re.escape(t) for t in _TRIGGERS] + [re.escape(s.lower()) for s in secrets]
    return re.compile(full), re.compile("|".join(triggers))


def _patterns(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    patterns = _PATTERN_CACHE.get(secrets)
    if patterns is None:
        patterns = _compile(secrets)
        if len(_PATTERN_CACHE) < 256:  # runs of the same task share their secrets
            _PATTERN_CACHE[secrets] = patterns
    return patterns


def _replace(match: re.Match[str]) -> str:
    group = match.lastgroup
    if group == "secret":
        return MASK
    if group == "u_pass":
        return f"{match['u_head']}{MASK}@"
    if group == "b_token":
        return f"{match['b_word']}{MASK}"
    scheme = match["kv_scheme"] or ""
    head = f"{match['kv_key']}{match['kv_sep']}{scheme}"
    if match["kv_dq"] is not None:
        return f'{head}"{MASK}"'
    if match["kv_sq"] is not None:
        return f"{head}'{MASK}'"
    return f"{head}{MASK}"


class Masker:
    """Replaces secrets in text with `****`; see the module docstring for the rules."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        ordered = tuple(sorted(values, key=lambda s: (-len(s), s)))  # longest wins
        self._pattern, self._trigger = _patterns(ordered)
        # A multi-line secret crosses the line windows mask() works in: mask all text then.
        self._by_line = not any("\n" in s or "\r" in s for s in ordered)

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by `****`."""
        lowered = text.lower()
        if not self._trigger.search(lowered):
            return text
        if not self._by_line or len(lowered) != len(text):  # lower() changed the offsets
            return self._pattern.sub(_replace, text)
        return self._mask_lines(text, lowered)

    def _mask_lines(self, text: str, lowered: str) -> str:
        """Mask only the lines holding a trigger (every match lies within one line)."""
        parts: list[str] = []
        done = 0
        for hit in self._trigger.finditer(lowered):
            if hit.start() < done:
                continue
            start = text.rfind("\n", 0, hit.start()) + 1
            end = text.find("\n", hit.end())
            end = len(text) if end < 0 else end
            parts.append(text[done:start])
            parts.append(self._pattern.sub(_replace, text[start:end]))
            done = end
        parts.append(text[done:])
        return "".join(parts)
