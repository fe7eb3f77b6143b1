"""Building blocks of the synthetic sound world (see :mod:`audiorepro.data.synthetic`).

- :mod:`.dsp`: numpy signal primitives (oscillators, shaped noise, envelopes).
- :mod:`.sounds`: the ontology (44 classes under 7 parents), their synthesisers, scene templates.
- :mod:`.captions`: caption generation from event parameters.
"""
from .sounds import CLASS_NAMES, CLASSES, classes_named_by, COMPANIONS, PARENTS, SCENES, SoundClass, Scene, get_class

__all__ = ["CLASS_NAMES", "CLASSES", "COMPANIONS", "PARENTS", "SCENES", "SoundClass", "Scene", "get_class",
           "classes_named_by"]
