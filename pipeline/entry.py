"""The ``reviewcause`` console script (and ``python -m pipeline``).

Loading the libraries takes about a second; a Ctrl-C then used to print a Python traceback (or a
broken import of a C extension). Until the command line is loaded, Ctrl-C ends the command at
once with the one line every interrupted run prints — unless this process was started with
Ctrl-C ignored (a script's ``cmd &``), which stays so.
"""

import os
import sys

import _signal  # the C module: ``signal`` builds its enums first, a window in which Ctrl-C was a traceback


def _early_interrupt(signum, frame):
    sys.stderr.write("reviewcause: interrupted; no output written\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> int:
    caught = _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    if caught:
        _signal.signal(_signal.SIGINT, _early_interrupt)
    from pipeline.cli import main as cli_main

    if caught:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    return cli_main()
