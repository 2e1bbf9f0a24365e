"""Train the run in RUN_DIR and SIGKILL this process right after step KILL_AT (test helper)."""

import os
import signal
import sys
from pathlib import Path

from pixelforge.training.run import read_run
from pixelforge.training.trainer import Trainer

run_dir, kill_at = Path(sys.argv[1]), int(sys.argv[2])


def kill(trainer, step, values):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


Trainer(read_run(run_dir), run_dir, callbacks=[kill], progress=False).fit()
