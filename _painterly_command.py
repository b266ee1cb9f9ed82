"""The `painterly` command's entry point, outside the package on purpose.

Importing painterly (torch with it) takes a second or two. A Ctrl-C in that time raised KeyboardInterrupt
from the console script's own import line, before painterly.cli.main could catch it: the user saw a
traceback, or, inside torch's C++ start-up, an abort ("terminate called after throwing ...
KeyboardInterrupt"). Here a Ctrl-C during the import is noted and ends the command once the import is
done, with the one line and exit status 130 that a Ctrl-C later gives.
"""

import signal
import sys

EXIT_INTERRUPTED = 130  # as painterly.cli's


def main() -> int:
    pressed: list[int] = []
    previous = None
    # only where Ctrl-C would raise: a SIGINT the parent had ignored (nohup, `trap '' INT`) stays ignored
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            previous = signal.signal(signal.SIGINT, lambda number, frame: pressed.append(number))
        except ValueError:  # not the main thread: nothing to hold back
            pass
    try:
        from painterly.cli import main as run
    except KeyboardInterrupt:
        pressed.append(signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run()


if __name__ == "__main__":
    sys.exit(main())
