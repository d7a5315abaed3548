"""Maths on a cache that the page asks for, numpy only: colour groups and the point -> clip
mapping (``groups``), analysis by any column (``analysis``), a query's neighbours and place
(``nearest``), a clip's waveform and spectrogram (``sound``)."""
