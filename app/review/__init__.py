"""The L3/T12 review queue: clinicians check, correct and accept predicted slice picks study by study.

- ``window``: the ReviewWindow that assembles the queue, the projections and the axial slice;
- ``queue``: the list of studies with the state of each level, and the progress;
- ``loading``: reading studies, making projections and predicting picks in workers, with prefetch;
- ``sources``: what the user opened (a folder of studies, files, or a picks CSV) as a picks file;
- ``decisions``: what each key does to a pick (accept, move, flag, not in scan), without Qt;
- ``projection_view`` / ``axial_view``: the images;
- ``opening`` (File ▸ Review slice picks… in the main window) and ``command`` (``ctviewer review``).
"""
