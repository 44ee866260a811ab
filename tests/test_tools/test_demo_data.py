"""The demo scene generator: determinism, annotation validity in every format, sizes, the CLI and the mmseg dataset."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmvit_ext.datasets import (CLASSES, THING_CLASSES, SceneConfig, demo_dataset_is_complete, encode_segmentation,
                                generate_demo_dataset, mask_to_rle, render_scene)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(num_train=6, num_val=3, seed=3, cfg=SceneConfig(height=96, width=128, crowd_prob=0.5), crop_size=32)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    counts = generate_demo_dataset(root, **SMALL)
    return root, counts


def _files(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, root)] = f.read()
    return found


def test_same_seed_same_bytes_other_seed_other_images(dataset, tmp_path):
    root, _ = dataset
    generate_demo_dataset(str(tmp_path / 'again'), **SMALL)
    first, again = _files(root), _files(str(tmp_path / 'again'))
    assert sorted(first) == sorted(again)
    assert all(first[k] == again[k] for k in first), [k for k in first if first[k] != again[k]]

    generate_demo_dataset(str(tmp_path / 'other'), **dict(SMALL, seed=4))
    other = _files(str(tmp_path / 'other'))
    assert first['images/train/000000.jpg'] != other['images/train/000000.jpg']


def test_bigger_split_keeps_the_smaller_splits_images(dataset, tmp_path):
    root, _ = dataset
    generate_demo_dataset(str(tmp_path / 'big'), **dict(SMALL, num_train=8))
    for i in range(SMALL['num_train']):
        name = f'images/train/{i:06d}.jpg'
        assert open(osp.join(root, name), 'rb').read() == open(str(tmp_path / 'big' / name), 'rb').read()


@pytest.mark.parametrize('split', ['train', 'val'])
def test_sizes_and_counts(dataset, split):
    root, counts = dataset
    cfg = SMALL['cfg']
    n = SMALL[f'num_{split}']
    images = sorted(os.listdir(osp.join(root, 'images', split)))
    assert images == [f'{i:06d}.jpg' for i in range(n)]
    for name in images:
        assert cv2.imread(osp.join(root, 'images', split, name)).shape == (cfg.height, cfg.width, 3)
    coco = json.load(open(osp.join(root, 'annotations', f'instances_{split}.json')))
    assert len(coco['images']) == n and counts[split]['images'] == n
    assert len(coco['annotations']) == counts[split]['instances'] > 0
    assert all(img['height'] == cfg.height and img['width'] == cfg.width for img in coco['images'])


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_instances_valid(dataset, split):
    root, _ = dataset
    coco = COCO(osp.join(root, 'annotations', f'instances_{split}.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(THING_CLASSES)
    kinds = set()
    for ann in coco.loadAnns(coco.getAnnIds()):
        kinds.add('rle' if isinstance(ann['segmentation'], dict) else 'polygon')
        img = coco.loadImgs(ann['image_id'])[0]
        mask = coco.annToMask(ann).astype(bool)
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= img['width'] and y + h <= img['height']
        inside = np.zeros_like(mask)
        inside[y:y + h, x:x + w] = True
        assert mask.any() and not (mask & ~inside).any(), f'annotation {ann["id"]}: mask outside its box'
        assert ann['iscrowd'] in (0, 1) and 0 < ann['area'] <= w * h
        # the annotation agrees with the semantic map: thing pixels carry the class, crowd pixels are ignored
        semantic = cv2.imread(osp.join(root, 'annotations', f'semantic_{split}', img['file_name'][:-4] + '.png'),
                              cv2.IMREAD_UNCHANGED)
        expected = 0 if ann['iscrowd'] else ann['category_id']
        assert (semantic[mask] == expected).all(), f'annotation {ann["id"]} disagrees with the semantic map'
        if isinstance(ann['segmentation'], dict):
            assert mask.sum() == ann['area']
        else:  # a polygon through the boundary pixels' centres loses part of the boundary
            assert ann['area'] >= mask.sum() >= 0.5 * ann['area']
    assert kinds == {'rle', 'polygon'}


@pytest.mark.parametrize('split', ['train', 'val'])
def test_panoptic_segments_cover_each_image_exactly_once(dataset, split):
    root, _ = dataset
    panoptic = json.load(open(osp.join(root, 'annotations', f'panoptic_{split}.json')))
    categories = {c['id']: c for c in panoptic['categories']}
    assert [categories[i]['name'] for i in sorted(categories)] == list(CLASSES)
    instances = json.load(open(osp.join(root, 'annotations', f'instances_{split}.json')))
    assert len(panoptic['annotations']) == len(panoptic['images'])
    for ann in panoptic['annotations']:
        png = cv2.imread(osp.join(root, 'annotations', f'panoptic_{split}', ann['file_name']))[..., ::-1]
        png = png.astype(np.int64)
        ids = png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]
        segments = {s['id']: s for s in ann['segments_info']}
        assert len(segments) == len(ann['segments_info'])
        present, areas = np.unique(ids, return_counts=True)
        assert set(present.tolist()) == set(segments), 'every pixel in exactly one listed segment, no void'
        assert sum(s['area'] for s in segments.values()) == ids.size
        for segment_id, area in zip(present.tolist(), areas.tolist()):
            segment = segments[segment_id]
            assert segment['area'] == area
            ys, xs = np.nonzero(ids == segment_id)
            assert segment['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        things = [s for s in segments.values() if categories[s['category_id']]['isthing']]
        assert any(not categories[s['category_id']]['isthing'] for s in segments.values())
        same_image = [a for a in instances['annotations'] if a['image_id'] == ann['image_id']]
        assert sorted((s['category_id'], s['area'], s['iscrowd']) for s in things) == sorted(
            (a['category_id'], a['area'], a['iscrowd']) for a in same_image)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_semantic_labels_in_range(dataset, split):
    root, _ = dataset
    folder = osp.join(root, 'annotations', f'semantic_{split}')
    names = sorted(os.listdir(folder))
    assert names == [f'{i:06d}.png' for i in range(SMALL[f'num_{split}'])]
    seen = set()
    for name in names:
        labels = cv2.imread(osp.join(folder, name), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and labels.shape == (SMALL['cfg'].height, SMALL['cfg'].width)
        assert labels.max() <= len(CLASSES)
        seen.update(np.unique(labels).tolist())
    assert {1, len(THING_CLASSES) + 1} <= seen  # a thing and sky


@pytest.mark.parametrize('split', ['train', 'val'])
def test_classification_crops(dataset, split):
    root, counts = dataset
    cls_root = osp.join(root, 'classification')
    lines = open(osp.join(cls_root, 'meta', f'{split}.txt')).read().splitlines()
    assert len(lines) == counts[split]['crops'] > 0
    for line in lines:
        path, label = line.split(' ')
        assert path.split('/')[0] == THING_CLASSES[int(label)]
        crop = cv2.imread(osp.join(cls_root, split, path))
        assert crop.shape == (SMALL['crop_size'], SMALL['crop_size'], 3)
    on_disk = sum(len(os.listdir(osp.join(cls_root, split, c))) for c in THING_CLASSES)
    assert on_disk == len(lines)


def test_render_scene_masks_are_disjoint_and_drawn():
    cfg = SceneConfig(height=64, width=80, min_objects=4, max_objects=4)
    scene = render_scene(np.random.default_rng(0), cfg)
    assert scene.image.shape == (64, 80, 3) and scene.stuff.shape == (64, 80)
    total = np.zeros((64, 80), int)
    for inst in scene.instances:
        total += inst.mask
        assert inst.area >= cfg.min_visible_pixels
    assert total.max() <= 1


def test_rle_and_polygon_encodings_round_trip():
    mask = np.zeros((20, 30), bool)
    mask[0:5, 3:9] = True
    mask[10:18, 12:25] = True
    mask[12:15, 15:20] = False  # a hole
    rle = mask_to_rle(mask)
    assert encode_segmentation(mask) == rle
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 20, 30)).astype(bool)
    assert (decoded == mask).all()
    square = np.zeros((20, 30), bool)
    square[4:12, 6:16] = True
    polygon = encode_segmentation(square)
    assert isinstance(polygon, list) and len(polygon) == 1
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, 20, 30))).astype(bool)
    assert decoded.sum() >= 0.7 * square.sum() and not (decoded & ~square).any()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match='at least one image'):
        generate_demo_dataset(str(tmp_path), num_train=0)
    with pytest.raises(ValueError, match='at least 32x32'):
        generate_demo_dataset(str(tmp_path), cfg=SceneConfig(height=16, width=64))


def test_cli_writes_once_and_skips_when_present(tmp_path):
    root = str(tmp_path / 'cli')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'dataset_converters', 'generate_demo_data.py'), '--root', root,
           '--num-train', '3', '--num-val', '2', '--size', '64', '96', '--if-absent']
    first = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert 'wrote the demo dataset (64x96' in first
    assert demo_dataset_is_complete(root, num_train=3, num_val=2, cfg=SceneConfig(height=64, width=96))
    assert not demo_dataset_is_complete(root, num_train=4, num_val=2, cfg=SceneConfig(height=64, width=96))
    second = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert 'already present' in second


def test_mmseg_dataset_reads_the_semantic_maps(dataset):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    root, _ = dataset
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(
            dict(type='DemoSceneSegDataset', data_root=root,
                 data_prefix=dict(img_path='images/val', seg_map_path='annotations/semantic_val'),
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]))
        labels = ds[0]['gt_seg_map']
    assert len(ds) == SMALL['num_val'] and ds.metainfo['classes'] == CLASSES
    assert len(ds.metainfo['palette']) == len(CLASSES)
    assert labels.shape == (SMALL['cfg'].height, SMALL['cfg'].width)
    assert set(np.unique(labels).tolist()) <= set(range(len(CLASSES))) | {255}


def test_panoptic_quality_fallback_matches_the_definition():
    """PQ = sum IoU(TP) / (TP + FP/2 + FN/2) per category, averaged over the categories present (Kirillov et al.)."""
    from mmvit_ext.datasets.panoptic_quality import PQStat, id2rgb, rgb2id
    ids = np.array([[0, 1], [256, 70000]])
    assert (rgb2id(id2rgb(ids)) == ids).all() and rgb2id([1, 1, 0]) == 257
    stat, other = PQStat(), PQStat()
    stat[1].tp, stat[1].iou, stat[1].fp = 2, 1.6, 1  # thing: two matches (IoU 0.9, 0.7), one false positive
    other[2].tp, other[2].iou, other[2].fn = 1, 0.8, 1  # stuff: one match, one miss
    stat += other
    categories = {1: dict(isthing=1), 2: dict(isthing=0), 3: dict(isthing=0)}  # 3 never occurs: not averaged
    things, per_class = stat.pq_average(categories, isthing=True)
    assert things['n'] == 1 and things['pq'] == pytest.approx(1.6 / 2.5) and things['sq'] == pytest.approx(0.8)
    assert things['rq'] == pytest.approx(2 / 2.5)
    everything, per_class = stat.pq_average(categories, isthing=None)
    assert everything['n'] == 2 and everything['pq'] == pytest.approx((1.6 / 2.5 + 0.8 / 1.5) / 2)
    assert per_class[3] == dict(pq=0., sq=0., rq=0.)
    import panopticapi.evaluation  # the real package or our fallback: mmdet's panoptic code imports one of them
    assert hasattr(panopticapi.evaluation, 'PQStat')
