"""``python -m synesthesia``: the ``synesthesia`` command, for launchers that run a module
(``torchrun --nproc_per_node 2 -m synesthesia train image ...``,
``accelerate launch --num_processes 2 -m synesthesia train clip ...``)."""

import sys

from synesthesia.cli import main

sys.exit(main())
