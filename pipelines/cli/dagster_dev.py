"""`dagster dev` (UI, daemon, code server) as `flights ui` starts it.

Dagster 1.13 marks `dagster dev` as superseded by `dg dev`, which needs a `dg` project layout
this repository does not use; both start the same processes. The notice is silenced here, in
our own entry point, so that an operator's screen shows only what needs attention.
"""

import sys
import warnings

import dagster as dg
from dagster._cli.dev import dev_command

if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=dg.SupersessionWarning)
    dev_command.main(args=sys.argv[1:], prog_name="flights ui")
