"""Print the digest line of a caller token for ``caller_token_digests``.

Usage::

    python -m simplestack.tokens < token-file
    python -m simplestack.tokens --new

The first form reads one token from standard input (a final line break is
dropped) and prints its ``sha256:<hex>`` line. ``--new`` makes a random
token, prints it on standard error for the caller to keep, and prints its
digest line on standard output. Neither form stores the token.
"""

import argparse
import secrets
import sys

from simplestack.access import token_digest


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m simplestack.tokens",
        description="Print the sha256:<hex> line of a caller token, to add "
                    "to simplestack.caller_token_digests.")
    parser.add_argument(
        "--new", action="store_true",
        help="make a random token (printed on standard error) instead of "
             "reading one from standard input")
    options = parser.parse_args(argv)

    if options.new:
        token = secrets.token_urlsafe(32).encode("ascii")
        print(token.decode("ascii"), file=sys.stderr)
    else:
        token = sys.stdin.buffer.read()
        if token.endswith(b"\r\n"):
            token = token[:-2]
        elif token.endswith(b"\n"):
            token = token[:-1]
        if not token.strip(b" \t"):
            parser.error("the token on standard input is empty")
        if b"\n" in token or b"\r" in token:
            parser.error("the token on standard input has a line break; "
                         "an HTTP header cannot carry it")
        if token != token.strip(b" \t"):
            parser.error("the token starts or ends with white space, which "
                         "the service strips from the header")
    print(token_digest(token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
