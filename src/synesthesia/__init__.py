"""synesthesia: multimodal learning, diffusion generation and multisensory integration.

Rooms (see the README's architecture section):

- :mod:`synesthesia.diffusion`  diffusion mathematics (schedules, objectives, samplers, guidance)
- :mod:`synesthesia.nets`       architectures (U-Nets, encoders, classifiers)
- :mod:`synesthesia.data`       the digit world and loaders for real datasets
- :mod:`synesthesia.multimodal` joint embeddings, contrastive losses, zero-shot, retrieval
- :mod:`synesthesia.pipelines`  generation pipelines, save_pretrained / from_pretrained
- :mod:`synesthesia.training`   the one trainer
- :mod:`synesthesia.metrics`    evaluators and scores
- :mod:`synesthesia.brain`      models of multisensory integration
"""

__version__ = "0.1.0"
