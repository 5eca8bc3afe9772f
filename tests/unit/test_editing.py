"""Label editing: brush shapes, strokes, fills, lasso, paint rules, locks, and sparse undo/redo."""

import numpy as np
import pytest
from skimage.draw import polygon as draw_polygon
from skimage.segmentation import flood

from ctviewer.data import LabelLayer, LabelMap, LabelTable, Volume
from ctviewer.editing import EditHistory, LabelEditor, PaintRules, brush_offsets
from ctviewer.editing.history import Delta
from ctviewer.imaging.slicing import PLANES


def make_editor(shape=(20, 40, 50), spacing=(1.0, 1.0, 1.0), labels=None, image=None, history=None):
    if labels is not None:
        shape = labels.shape
    image = image if image is not None else Volume(np.zeros(shape, np.int16), spacing=spacing, modality="CT")
    arr = labels if labels is not None else np.zeros(image.shape, np.uint8)
    layer = LabelLayer(LabelMap(image.with_array(arr), LabelTable.for_ids([1, 2, 3])))
    return LabelEditor(layer, image, history)


def changed_box(before, after):
    """The tightest box around voxels that differ (what a reported bbox must equal)."""
    where = np.nonzero(before != after)
    return tuple(slice(int(w.min()), int(w.max()) + 1) for w in where)


# -- brush shapes --------------------------------------------------------------------------------
def test_disc_in_pixels_is_round_and_one_voxel_thick():
    disc = brush_offsets(10, "px", (2.5, 0.7, 0.7), "axial")
    assert disc.shape == (1, 21, 21)
    assert disc.sum() == 317  # lattice points with y^2 + x^2 <= 100
    assert disc[0, 10, 0] and disc[0, 0, 10] and not disc[0, 0, 0]
    assert (disc == disc[:, ::-1]).all() and (disc == disc[:, :, ::-1]).all()
    for name, p in PLANES.items():
        assert brush_offsets(3, "px", (1, 1, 1), name).shape[p.normal_axis] == 1


def test_brush_in_mm_is_an_ellipse_in_voxels_for_anisotropic_spacing():
    spacing = (2.5, 0.5, 1.0)
    disc = brush_offsets(5, "mm", spacing, "axial")
    assert disc.shape == (1, 21, 11)  # 5 mm = 10 rows of 0.5 mm, 5 columns of 1 mm
    _, dy, dx = np.nonzero(disc)
    mm = np.hypot((dy - 10) * 0.5, (dx - 5) * 1.0)
    assert mm.max() <= 5 + 1e-9
    # every voxel whose centre lies within 5 mm is in the brush
    yy, xx = np.mgrid[-10:11, -5:6]
    assert (disc[0] == (np.hypot(yy * 0.5, xx * 1.0) <= 5 + 1e-9)).all()
    ball = brush_offsets(4, "mm", (2.0, 1.0, 1.0), None)
    assert ball.shape == (5, 9, 9)
    assert ball[0, 4, 4] and ball[2, 4, 0] and not ball[0, 4, 0]


def test_sphere_in_pixels_and_a_tiny_brush_is_one_voxel():
    ball = brush_offsets(3, "px", (3.0, 1.0, 1.0), None)
    assert ball.shape == (7, 7, 7) and ball.sum() == 123  # lattice points in a radius-3 ball
    for radius, unit in [(0, "px"), (0.4, "px"), (0.2, "mm")]:
        tiny = brush_offsets(radius, unit, (1, 1, 1), None)
        assert tiny.shape == (1, 1, 1) and tiny.all()
    with pytest.raises(ValueError):
        brush_offsets(3, "cm", (1, 1, 1), None)


# -- brush strokes ---------------------------------------------------------------------------------
def test_dab_paints_the_disc_and_reports_its_box():
    ed = make_editor()
    seen = []
    ed.layer.data_changed.connect(seen.append)
    edited = []
    ed.edited.connect(edited.append)
    before = ed.layer.array.copy()
    bbox = ed.dab((5, 20, 25), 3)
    assert bbox == (slice(5, 6), slice(17, 24), slice(22, 29)) == changed_box(before, ed.layer.array)
    assert seen == [bbox] and edited == [bbox]
    assert (ed.layer.array[bbox] == brush_offsets(3, "px", (1, 1, 1), "axial")).all()
    assert ed.modified and ed.edit_count == 1
    assert ed.dab((5, 20, 25), 3) is None  # same value again: nothing changes, nothing recorded
    assert len(ed.history) == 1 and ed.edit_count == 1


def test_dab_is_clipped_at_the_volume_edges():
    ed = make_editor()
    before = ed.layer.array.copy()
    bbox = ed.dab((0, 0, 0), 4, plane="coronal")
    disc = brush_offsets(4, "px", (1, 1, 1), "coronal")  # spans axes 0 and 2
    assert bbox == changed_box(before, ed.layer.array) == (slice(0, 5), slice(0, 1), slice(0, 5))
    assert (ed.layer.array[bbox] == disc[4:, :, 4:]).all()
    assert ed.layer.array.sum() == disc[4:, :, 4:].sum()
    # a centre outside the map still paints the part of the brush that lies inside
    assert ed.dab((10, 20, -2), 3) == (slice(10, 11), slice(18, 23), slice(0, 2))
    assert ed.dab((10, 20, -10), 3) is None


def test_a_stroke_is_one_undo_step_and_a_fast_drag_leaves_no_gap():
    ed = make_editor()
    ed.begin_stroke("brush")
    ed.dab((3, 10, 5), 2)
    ed.line((3, 10, 5), (3, 10, 45), 2)  # 40 voxels in one mouse move
    ed.line((3, 10, 45), (3, 30, 45), 2)
    delta = ed.end_stroke()
    arr = ed.layer.array
    assert arr[3, 10, 5:46].all() and arr[3, 10:31, 45].all()
    assert len(ed.history) == 1 and ed.history.undo_text == "brush"
    assert delta.size == int(arr.sum()) and delta.new == 1 and (delta.old == 0).all()
    assert ed.undo() == delta.bbox
    assert not ed.layer.array.any()


def test_eraser_stroke_keeps_first_old_values():
    labels = np.zeros((4, 30, 30), np.uint8)
    labels[1, 5:25, 5:25] = 2
    ed = make_editor(labels=labels)
    before = labels.copy()
    ed.begin_stroke("erase")
    ed.dab((1, 10, 10), 3, value=0)
    ed.dab((1, 10, 12), 3, value=0)  # overlaps the first dab
    ed.dab((1, 10, 14), 3, value=3)  # and repaints some of it within the same stroke
    ed.end_stroke()
    assert ed.history.undo_text == "erase"
    ed.undo()
    assert (ed.layer.array == before).all()


# -- undo / redo ------------------------------------------------------------------------------------
def test_undo_and_redo_restore_exact_arrays():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=(6, 30, 40)).astype(np.uint8)
    ed = make_editor(labels=labels)
    states = [ed.layer.array.copy()]
    edits = [
        lambda: ed.dab((2, 10, 10), 4, value=3),
        lambda: ed.line((1, 5, 5), (4, 25, 35), 2, plane=None, value=0),
        lambda: ed.fill((3, 0, 0), plane=None, value=2),  # the seed holds label 1
        lambda: ed.polygon("axial", 5, [(2, 2), (2, 30), (25, 15)], value=2),
        lambda: ed.apply_mask(rng.random((6, 30, 40)) > 0.7, value=3, description="threshold"),
        lambda: ed.replace_all(rng.integers(0, 4, size=(6, 30, 40)).astype(np.uint8)),
    ]
    for edit in edits:
        assert edit() is not None
        states.append(ed.layer.array.copy())
    assert len(ed.history) == len(edits)
    for state in reversed(states[:-1]):
        assert ed.undo() is not None
        assert (ed.layer.array == state).all()
    assert ed.undo() is None and not ed.history.can_undo
    for state in states[1:]:
        assert ed.redo() is not None
        assert (ed.layer.array == state).all()
    assert ed.redo() is None


def test_a_new_edit_clears_redo():
    ed = make_editor()
    ed.dab((1, 10, 10), 2)
    ed.dab((1, 20, 20), 2, value=2)
    ed.undo()
    assert ed.history.can_redo and ed.history.redo_text == "brush"
    ed.fill((5, 0, 0), value=3)
    assert not ed.history.can_redo and ed.history.redo_text == ""
    assert ed.history.undo_text == "fill"
    assert ed.redo() is None


def test_history_is_bounded_and_keeps_the_newest_edit():
    ed = make_editor(history=EditHistory(max_steps=3))
    for k in range(5):
        ed.dab((k, 10, 10), 2)
    assert len(ed.history) == 3
    while ed.undo():
        pass
    assert ed.layer.array[:2].any() and not ed.layer.array[2:].any()  # the two oldest stay painted

    history = EditHistory(max_bytes=1000)
    changes = []
    history.changed.connect(lambda: changes.append(1))
    ed = make_editor(history=history)
    ed.dab((1, 10, 10), 2)
    ed.dab((2, 10, 10), 2)
    assert len(history) == 2 and history.nbytes < 1000
    ed.fill((5, 0, 0), value=2)  # 2000 voxels: bigger than the whole budget, still undoable
    assert len(history) == 1 and history.nbytes > 1000
    ed.undo()
    assert not (ed.layer.array == 2).any()
    assert len(changes) == 4  # three pushes and an undo
    history.clear()
    assert history.nbytes == 0 and not history.can_redo and len(changes) == 5


def test_delta_index_dtype_and_nbytes():
    ed = make_editor()
    ed.fill((0, 0, 0), plane=None, value=2)
    ed.undo()
    delta = ed.history.peek_redo()
    assert delta.index.dtype == np.uint32 and delta.old.dtype == np.uint8 and delta.new == 2
    assert delta.nbytes == ed.layer.array.size * 5 == ed.history.nbytes
    arr = np.zeros((3, 4), np.uint8)[:, ::-1]  # not contiguous: writes must still land in the array
    Delta(np.array([0, 5], np.uint32), np.array([0, 0], np.uint8), 7, "x", (slice(0, 2),) * 3).apply(arr)
    assert arr[0, 0] == 7 and arr[1, 1] == 7 and arr.sum() == 14


def test_undo_works_on_a_label_map_that_is_a_flipped_view():
    labels = np.zeros((4, 20, 20), np.uint8)[:, ::-1]
    ed = make_editor(labels=labels)
    bbox = ed.dab((2, 3, 4), 2, value=2)
    assert ed.layer.array[2, 3, 4] == 2 and bbox == (slice(2, 3), slice(1, 6), slice(2, 7))
    ed.undo()
    assert not ed.layer.array.any()
    ed.redo()
    assert ed.layer.array[2, 3, 4] == 2


# -- paint rules and locks ------------------------------------------------------------------------
def test_paint_over_background_or_one_label_only():
    labels = np.zeros((3, 20, 20), np.uint8)
    labels[1, :, :10] = 2
    labels[1, :, 10:15] = 3
    ed = make_editor(labels=labels.copy())
    arr = ed.layer.array
    ed.rules = PaintRules(over="background")
    ed.dab((1, 10, 10), 20, value=1)  # the brush covers the whole slice
    assert (arr[1, :, :15] == labels[1, :, :15]).all() and (arr[1, :, 15:] == 1).all()
    ed.rules = PaintRules(over="label", over_label=3)
    ed.dab((1, 10, 10), 20, value=1)
    assert (arr[1, :, :10] == 2).all() and (arr[1, :, 10:] == 1).all()
    ed.rules = PaintRules(over="label", over_label=1)
    ed.dab((1, 10, 10), 20, value=0)  # the eraser obeys 'label' too: label 2 stays
    assert (arr[1, :, :10] == 2).all() and not arr[1, :, 10:].any()
    ed.rules = PaintRules(over="background")
    ed.dab((1, 10, 5), 3, value=0)  # 'background' would leave the eraser nothing: it ignores it
    assert arr[1, 10, 5] == 0 and arr[1, 10, 0] == 2
    assert not arr[0].any() and not arr[2].any()
    with pytest.raises(ValueError):
        PaintRules(over="everything")


def test_locked_labels_are_never_painted_over_nor_erased():
    labels = np.zeros((3, 20, 20), np.uint8)
    labels[1, 5:15, 5:15] = 2
    ed = make_editor(labels=labels.copy())
    ed.layer.labels.table.update(2, locked=True)
    ed.dab((1, 10, 10), 8, value=1)
    arr = ed.layer.array
    assert (arr[1, 5:15, 5:15] == 2).all() and arr[1, 10, 3] == 1
    assert ed.dab((1, 10, 10), 3, value=0) is None
    assert ed.fill((1, 10, 10), value=3) is None
    ed.apply_mask(np.ones(arr.shape, bool), value=3)
    ed.replace_all(np.zeros(arr.shape, np.uint8))
    assert (arr[1, 5:15, 5:15] == 2).all() and (arr == 2).sum() == 100
    assert (arr != 2).sum() == arr.size - 100 and not arr[arr != 2].any()


def ct_like():
    """A body (40 HU) with a bright vessel (300 HU) and bone (1000 HU)."""
    arr = np.full((8, 40, 40), -1000, np.int16)
    arr[:, 5:35, 5:35] = 40
    arr[:, 10:14, 10:30] = 300
    arr[:, 25:30, 20:25] = 1000
    return Volume(arr, spacing=(2.0, 0.8, 0.8), modality="CT")


def test_threshold_paint_changes_only_voxels_in_the_value_range():
    image = ct_like()
    ed = make_editor(image=image)
    ed.rules.value_range = (200, 500)
    ed.dab((4, 15, 20), 15)
    assert (ed.layer.array[4] == ((image.array[4] >= 200) & (image.array[4] <= 500))).all()
    ed.rules.value_range = None
    ed.undo()
    assert not ed.layer.array.any()


def test_threshold_paint_on_a_photo_uses_luminance():
    rgb = np.zeros((1, 30, 30, 3), np.uint8)
    rgb[0, :, 15:] = (255, 255, 255)  # right half white
    rgb[0, 10:20, 20:25] = (0, 0, 255)  # a blue patch: dark in luminance (about 18)
    photo = Volume(rgb, modality="XC")
    ed = make_editor(image=photo)
    ed.rules.value_range = (128, 255)
    ed.dab((0, 15, 15), 30)  # covers the whole photo
    arr = ed.layer.array[0]
    assert arr[:, 15:].sum() == 30 * 15 - 50 and not arr[:, :15].any() and not arr[10:20, 20:25].any()
    ed.rules.value_range = None
    assert ed.fill((0, 15, 22), value=2, value_range=(10, 30)) == (slice(0, 1), slice(10, 20), slice(20, 25))


# -- fills and polygons ----------------------------------------------------------------------------
def tube_labels():
    """Label 1 in a tube along axis 0 that closes on slice 3, so 2-D and 3-D fills differ."""
    labels = np.zeros((6, 120, 120), np.uint8)
    labels[:, 10:110, 10:110] = 1
    labels[3, 10:110, 10:110] = 2
    return labels


def test_fill_2d_stays_in_the_slice_and_3d_follows_the_region():
    ed = make_editor(labels=tube_labels())
    assert ed.fill((1, 50, 50), plane="axial", value=3) == (slice(1, 2), slice(10, 110), slice(10, 110))
    assert (ed.layer.array == 3).sum() == 100 * 100
    ed.undo()
    assert ed.fill((1, 50, 50), plane=None, value=3) == (slice(0, 3), slice(10, 110), slice(10, 110))
    assert (ed.layer.array == 3).sum() == 3 * 100 * 100 and (ed.layer.array[4:] == 1).any()
    ed.undo()
    # filling the background in 3-D (face connectivity) reaches around the tube from any corner
    before = ed.layer.array.copy()
    bbox = ed.fill((0, 0, 0), plane=None, value=2)
    assert bbox == changed_box(before, ed.layer.array) == (slice(0, 6), slice(0, 120), slice(0, 120))
    expected = flood(before, (0, 0, 0), connectivity=1)
    assert ((ed.layer.array == 2) == (expected | (before == 2))).all()


@pytest.mark.parametrize("search", ["flood", "labelling"])
def test_fill_through_a_winding_region_matches_a_full_flood(search, monkeypatch):
    if search == "labelling":  # the path big boxes take (scipy labels instead of skimage's flood)
        monkeypatch.setattr("ctviewer.editing.editor._FLOOD_MAX_VOXELS", 0)
    # a random maze of label 1 whose biggest region winds far from the seed
    from scipy import ndimage

    rng = np.random.default_rng(5)
    labels = (rng.random((3, 300, 300)) > 0.45).astype(np.uint8)
    parts, _ = ndimage.label(labels)
    biggest = np.bincount(parts.ravel())[1:].argmax() + 1
    seed = tuple(int(v) for v in np.argwhere(parts == biggest)[0])
    expected = flood(labels, seed, connectivity=1)
    assert expected.sum() > 20_000  # far beyond the fill's first search box
    ed = make_editor(labels=labels.copy())
    ed.fill(seed, plane=None, value=2)
    assert ((ed.layer.array == 2) == expected).all()
    ed.undo()
    ed.fill(seed, plane="axial", value=2)
    expected = np.zeros_like(labels, bool)
    expected[seed[0]] = flood(labels[seed[0]], seed[1:], connectivity=1)
    assert ((ed.layer.array == 2) == expected).all()


def test_fill_limited_by_value_range():
    image = ct_like()
    ed = make_editor(image=image)
    bbox = ed.fill((2, 12, 15), plane="axial", value=1, value_range=(200, 500))
    assert bbox == (slice(2, 3), slice(10, 14), slice(10, 30))
    assert (ed.layer.array == 1).sum() == 4 * 20
    ed.rules.value_range = (0, 2000)  # the rules' range is used when none is given
    ed.fill((2, 20, 20), plane=None, value=2)
    assert (ed.layer.array == 2).sum() == 8 * 30 * 30 - 4 * 20
    assert ed.fill((2, 0, 0), value=3) is None  # the seed itself is outside the range


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_polygon_matches_skimage_on_each_plane(plane):
    ed = make_editor(shape=(30, 40, 50))
    p = PLANES[plane]
    shape = ed.layer.array.shape
    points = [(2.5, 3.0), (25.2, 8.0), (20.0, 40.7), (4.0, 28.0)]
    rows, cols = zip(*points)
    rr, cc = draw_polygon(rows, cols, shape=(shape[p.row_axis], shape[p.col_axis]))
    expected = np.zeros((shape[p.row_axis], shape[p.col_axis]), bool)
    expected[rr, cc] = True
    bbox = ed.polygon(plane, 7, points, value=2)
    painted = ed.layer.array[(slice(None),) * p.normal_axis + (7,)] == 2
    assert (painted == expected).all() and (ed.layer.array == 2).sum() == expected.sum()
    assert bbox[p.normal_axis] == slice(7, 8)
    assert bbox[p.row_axis] == slice(int(rr.min()), int(rr.max()) + 1)
    assert bbox[p.col_axis] == slice(int(cc.min()), int(cc.max()) + 1)
    assert ed.history.undo_text == "polygon"


def test_apply_mask_of_a_region_and_replace_all_is_sparse():
    ed = make_editor()
    mask = np.zeros((2, 3, 4), bool)
    mask[1, 1, 2] = True
    bbox = ed.apply_mask(mask, value=3, description="threshold", bbox=(slice(5, 7), slice(10, 13), slice(None, 4)))
    assert bbox == (slice(6, 7), slice(11, 12), slice(2, 3)) and ed.layer.array[6, 11, 2] == 3
    with pytest.raises(ValueError):
        ed.apply_mask(mask)
    new = ed.layer.array.copy()
    new[0, :5, :5] = 7
    before = ed.layer.array.copy()
    assert ed.replace_all(new, "bins") == changed_box(before, new)
    assert ed.history.undo_text == "bins" and 7 in ed.layer.labels.table
    ed.undo()
    assert (ed.layer.array == before).all()
    delta = ed.history.peek_redo()
    assert delta.size == 25 and delta.new == 7


# -- label ids and dtypes ----------------------------------------------------------------------------
def test_ids_beyond_255_promote_the_map_to_uint16():
    ed = make_editor()
    ed.dab((1, 10, 10), 2, value=1)
    events = []
    ed.layer.data_changed.connect(events.append)
    bbox = ed.dab((1, 20, 20), 2, value=300)
    assert ed.layer.array.dtype == np.uint16 and ed.layer.labels.volume.array.dtype == np.uint16
    assert events == [None, bbox]
    assert ed.layer.array[1, 20, 20] == 300 and ed.layer.array[1, 10, 10] == 1
    assert 300 in ed.layer.labels.table
    ed.undo()
    ed.undo()
    assert not ed.layer.array.any()
    ed.redo()
    ed.redo()
    assert ed.pick((1, 20, 20)) == 300 and ed.pick((1, 10, 10)) == 1
    with pytest.raises(ValueError):
        ed.dab((1, 10, 10), 2, value=70000)


def test_new_ids_get_a_table_entry_and_saving_clears_modified():
    ed = make_editor()
    ed.label = 9
    ed.dab((1, 10, 10), 2)
    assert ed.pick((1, 10, 10)) == 9 and 9 in ed.layer.labels.table
    ed.mark_saved()
    assert not ed.modified
    ed.undo()
    assert ed.modified and ed.edit_count == 2


def test_reported_boxes_cover_exactly_the_changed_voxels():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, size=(10, 40, 40)).astype(np.uint8)
    ed = make_editor(labels=labels)
    ops = [
        lambda: ed.dab((5, 20, 20), 6, value=1),
        lambda: ed.dab((5, 20, 20), 3, plane=None, value=3),
        lambda: ed.line((0, 0, 0), (9, 39, 39), 1.5, plane=None, value=0),
        lambda: ed.fill((2, 0, 0), plane="sagittal", value=3),
        lambda: ed.polygon("coronal", 3, [(0, 0), (9, 5), (2, 39)], value=1),
    ]
    for op in ops:
        before = ed.layer.array.copy()
        assert op() == changed_box(before, ed.layer.array)
        after = ed.layer.array.copy()
        assert ed.undo() == changed_box(before, after)
        assert ed.redo() == changed_box(before, after)


def test_flat_indices_of_a_region_match_numpy():
    from ctviewer.editing.history import flat_index

    rng = np.random.default_rng(2)
    shape = (7, 11, 13)
    for region in [(slice(2, 5), slice(3, 9), slice(4, 13)), (slice(0, 7), slice(0, 11), slice(0, 13)),
                   (slice(6, 7), slice(0, 11), slice(5, 6)), (slice(1, 4), slice(0, 11), slice(0, 13))]:
        mask = rng.random(tuple(r.stop - r.start for r in region)) > 0.5
        coords = [c + r.start for c, r in zip(np.nonzero(mask), region)]
        assert (flat_index(mask, region, shape) == np.ravel_multi_index(coords, shape)).all()


def test_edits_touch_memory_in_proportion_to_what_they_change():
    import tracemalloc

    labels = np.ones((64, 512, 512), np.uint8)  # 16 MiB
    labels[30:40, 200:210, 300:310] = 0  # a small hole inside label 1
    image = Volume(np.broadcast_to(np.int16(0), labels.shape))
    ed = make_editor(labels=labels, image=image)
    tracemalloc.start()
    try:
        ed.dab((32, 256, 256), 10, value=2)
        dab_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        assert ed.fill((35, 205, 305), plane=None, value=3) == (slice(30, 40), slice(200, 210), slice(300, 310))
        fill_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dab_peak < 256 * 1024 and fill_peak < 4 * 2**20  # the map is 16 MiB


def test_history_of_1000_strokes_stays_small():
    ed = make_editor(shape=(8, 512, 512))
    rng = np.random.default_rng(0)
    for n in range(1000):
        start = rng.integers(40, 470, size=2)
        ed.begin_stroke()
        for d in range(10):
            ed.dab((n % 8, start[0] + 3 * d, start[1] + 2 * d), 10, value=1 + n % 3)
        ed.end_stroke()
    assert len(ed.history) == 1000
    assert ed.history.nbytes < 50 * 2**20
    assert ed.history.nbytes < 1000 * 10 * 317 * 5  # far less than 10 whole discs per stroke


def test_real_thin_section_fill_matches_a_flood(shared_data):
    from ctviewer.io.label_files import read_label_map
    from ctviewer.io.photo import load_photo

    photo = load_photo(shared_data / "thin_sections" / "images" / "1.png")
    labels = read_label_map(shared_data / "thin_sections" / "labels" / "1.png")
    layer = LabelLayer(labels)
    ed = LabelEditor(layer, photo)
    before = layer.array.copy()
    seed = (0, before.shape[1] // 2, before.shape[2] // 2)
    ed.fill(seed, value=200)
    assert ((layer.array == 200)[0] == flood(before[0], seed[1:], connectivity=1)).all()
    ed.undo()
    assert (layer.array == before).all()
