"""shutdown.py: the two pieces of signal plumbing every Python target of the zoo shares."""

import signal
import sys


def install_handlers(handler):
    """Installs `handler` for SIGINT, then SIGTERM. SIGINT first: Python has a SIGINT
    handler of its own from startup (KeyboardInterrupt), so the moment SIGTERM's handler
    appears is the moment both are this program's; scenarios count SIGINT strikes from it
    (`at = { after_handler = "SIGTERM" }`)."""
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def exit_with(code):
    """Exits with `code`, no later signal can change it: Python restores the default
    actions of SIGINT and SIGTERM while the interpreter shuts down, so a signal arriving
    then would turn a finished run into a death by signal."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(code)
