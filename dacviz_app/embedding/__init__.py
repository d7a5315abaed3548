"""Maths on arrays, no cache and no Dash: the view table (``spaces``), exact cosine neighbours
(``neighbours``; torch only inside the functions precompute calls), PCA and t-SNE and the placing
of new points (``projections``), cluster and k-NN metrics (``metrics``)."""
