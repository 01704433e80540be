"""Start the Tidings desktop app: ``python main.py [--demo] [--home DIR]``.

``--demo`` builds (or refreshes) the demo profile from the sample mail the project
ships and opens it, so a newcomer sees a working client without any account.
Until the desktop window lands (issue 7), this prepares the profile, says what it
would show and exits 0.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="main.py", description="Tidings desktop app")
    parser.add_argument("--demo", action="store_true", help="open the demo profile")
    parser.add_argument("--home", metavar="DIR", help="profile folder")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    from app import cli

    if args.demo:
        code = cli.run([*(["--home", args.home] if args.home else []), "demo"])
        if code:
            return code
    home_args = ["--home", args.home] if args.home else []
    if args.demo and not args.home:
        from app.profile import demo_home

        home_args = ["--home", str(demo_home())]
    print("The desktop window is not built yet; this profile holds:")
    return cli.run([*home_args, "folders"])


if __name__ == "__main__":
    sys.exit(main())
