"""Clips -> a cache (torch). ``cli`` parses the command; ``sources`` lists the clips; ``plan``
fixes what the cache depends on; ``audio`` and ``loading`` read and prepare clips; ``dac_encode``,
``encoders`` and ``mfcc`` make the representations; ``encode_run`` encodes the plan in resumable
chunks (``ray_encode`` on a Ray cluster); ``downstream`` makes the neighbour tables, projections,
metrics and manifest; ``pipeline`` runs it all under the directory lock; ``precision``,
``summary``, ``demo`` and ``synthetic`` serve them."""
