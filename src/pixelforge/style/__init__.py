"""Style transfer: Gatys optimisation (gatys.py), colour preservation (color.py) and procedural
built-in style images (builtin.py). Files and folders: :mod:`pixelforge.tasks.stylize`."""
