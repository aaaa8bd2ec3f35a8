"""The generalist models' training as one resumable plan of stages (`gnntrack train-generalist`).

Why: `parameters/general-2d` and `general-3d` were made by a shell recipe of a dozen
commands (simulate the training sequences, train the segmenter, the embedding, the tracker).
Here that recipe is data (`RECIPES`), the plan lists every stage's parameters, and a runner
does the stages in order, each written atomically and recorded when done, so a rerun after a
crash, a kill or `--until` redoes only what is not done. `--scale small` runs the same path
on tiny sequences in a minute or two on a CPU, which is what the tests train.

The work folder:

    plan.json                       the plan: every stage's kind, parameters, output
    data/<sequence>/                the simulated training sequences (CTC layout)
    model/seg, embedding, tracker   the model's parts as they are trained
    stages/<stage>.json             a finished stage's record

A stage counts as done when its record's fingerprint (its kind and parameters, and the
fingerprints of the stages it reads) is the plan's, its output is there and still the one
recorded, and what it read is still what it read then. The model folder `--out` is written
(a copy of model/ plus plan.json) only when every stage is done.
"""

from training.generalist.plan import PARTS, Plan, Stage, make_plan
from training.generalist.recipes import RECIPES, Recipe, Sim
from training.generalist.runner import train_generalist

__all__ = ["PARTS", "RECIPES", "Plan", "Recipe", "Sim", "Stage", "make_plan", "train_generalist"]
