"""Data side of the multilayer-fusion chapter: the nine downstream task analogues
(:mod:`audiorepro.papers.fusion.tasks`). The method itself lives in :mod:`audiorepro.papers.fusion.model`."""
from .tasks import (ANALOGUES, MUSIC_STYLES, TaskUnavailable, fusion_tasks, music_style_table,
                    load_tasks, paper_tasks, subsample, task_overview)

__all__ = ["ANALOGUES", "MUSIC_STYLES", "TaskUnavailable", "fusion_tasks", "music_style_table",
           "load_tasks", "paper_tasks", "subsample", "task_overview"]
