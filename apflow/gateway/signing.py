"""Shell snippets that call apflow's webhook signed the DESIGN.md section 5 way.

X-Webhook-Timestamp is the unix time in seconds and X-Webhook-Signature the lowercase hex
HMAC-SHA256(secret, timestamp + "." + raw body). The secret is read from an environment
variable when the snippet runs and never appears in the generated text.
"""

from __future__ import annotations

import re

from apflow.domain.errors import InvalidParams

BODY = "{}"
SECRET_ENV = "APFLOW_WEBHOOK_SECRET"  # noqa: S105 (the variable's name, not a secret)
URL_ENV = "APFLOW_WEBHOOK_URL"
_SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# HMAC (RFC 2104) with busybox tools only (od, sha256sum, cut, tr, date) and shell
# arithmetic, for images without openssl such as curlimages/curl. The key goes through
# pipes, never through a command line where `ps` would show it.
_BUSYBOX_SCRIPT = r"""set -eu
# HMAC-SHA256 (RFC 2104) of "timestamp.body" with busybox tools; the key never reaches argv.
escapes() {  # hex digits in $1, padded with zero bytes to $2 bytes and XORed with $3
  h=$1; n=0; ESC=''
  while [ "$n" -lt "$2" ]; do
    b=0
    if [ -n "$h" ]; then b=$((0x${h%"${h#??}"})); h=${h#??}; fi
    x=$((b ^ $3)); ESC="$ESC\\$((x >> 6 & 7))$((x >> 3 & 7))$((x & 7))"; n=$((n + 1))
  done
}
: "${__SECRET__:?is not set}"
key=$(printf '%s' "$__SECRET__" | od -An -v -tx1 | tr -d ' \n')
if [ "${#key}" -gt 128 ]; then
  key=$(printf '%s' "$__SECRET__" | sha256sum | cut -c1-64)
fi
body='__BODY__'
ts=$(date +%s)
escapes "$key" 64 54
inner=$({ printf "$ESC"; printf '%s.%s' "$ts" "$body"; } | sha256sum | cut -c1-64)
escapes "$key" 64 92; outer=$ESC
escapes "$inner" 32 0
sig=$({ printf "$outer"; printf "$ESC"; } | sha256sum | cut -c1-64)
exec curl -fsS --max-time 30 -X POST -H 'Content-Type: application/json' \
  -H "X-Webhook-Timestamp: $ts" -H "X-Webhook-Signature: $sig" \
  --data-binary "$body" "$__URL__"
"""


def check_env_name(name: str, field: str) -> str:
    """`name` if it is a valid shell variable name, else InvalidParams naming the field."""
    if not isinstance(name, str) or not _SHELL_NAME.match(name):
        raise InvalidParams(f"{name!r} is not a shell variable name", field=field)
    return name


def sh_quote(text: str) -> str:
    """`text` as one single-quoted shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


def busybox_script(secret_env: str = SECRET_ENV, url_env: str = URL_ENV) -> str:
    """A sh script POSTing the signed body to $url_env, needing only busybox and curl."""
    return (_BUSYBOX_SCRIPT.replace("__SECRET__", check_env_name(secret_env, "secret_env"))
            .replace("__URL__", check_env_name(url_env, "url_env"))
            .replace("__BODY__", BODY))


def openssl_command(url: str, secret_env: str = SECRET_ENV) -> str:
    """One sh command line POSTing the signed body to `url` with openssl and curl.

    openssl takes the key as an argument, so while it runs (milliseconds) the secret is
    visible in the host's process list; busybox_script avoids that.
    """
    secret = check_env_name(secret_env, "secret_env")
    return (f": \"${{{secret}:?is not set}}\"; ts=$(date +%s); body={sh_quote(BODY)}; "
            "sig=$(printf '%s.%s' \"$ts\" \"$body\" | openssl dgst -sha256 -hmac "
            f"\"${secret}\" | sed 's/^.* //'); "
            "curl -fsS --max-time 30 -X POST -H 'Content-Type: application/json' "
            "-H \"X-Webhook-Timestamp: $ts\" -H \"X-Webhook-Signature: $sig\" "
            f"--data-binary \"$body\" {sh_quote(url)}")
