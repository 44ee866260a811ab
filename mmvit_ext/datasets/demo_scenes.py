"""The embedded demo data: seeded synthetic scenes in the formats mmdet, mmseg and mmpretrain read.

Each image comes from one scene description: a stuff layout (sky above a wavy horizon, an optional brick wall,
grass and water below) with a texture per stuff class, and a z-ordered list of thing shapes (disc, square,
triangle, ring, star) of random colour, size, aspect and rotation that occlude one another, plus now and then a
crowd of tiny discs. The same description is written as

* COCO instances: ``annotations/instances_{split}.json`` (polygon for a simply connected visible mask, uncompressed
  RLE otherwise; ``iscrowd``; ``area`` = visible pixels; ``bbox`` = box of the visible mask),
* COCO panoptic: ``annotations/panoptic_{split}.json`` + ``annotations/panoptic_{split}/*.png`` (things and stuff,
  every pixel in exactly one segment),
* ADE20K-style semantic maps: ``annotations/semantic_{split}/*.png`` with 0 = ignore (crowd pixels) and
  ``k + 1`` = class ``k`` of :data:`CLASSES` (load with ``reduce_zero_label=True``),
* ImageNet-style classification crops: ``classification/{split}/<thing class>/*.jpg`` and the ``ann_file`` list
  ``classification/meta/{split}.txt`` (``<class>/<file> <label>``, labels index :data:`THING_CLASSES`),

with the images in ``images/{split}/*.jpg``. Image ``i`` of a split depends only on ``(seed, split, i)``, so a
bigger split keeps the images of a smaller one, and the same arguments give the same bytes.
"""
import colorsys
import json
import os
import os.path as osp
import shutil
from dataclasses import asdict, dataclass
from typing import List

import cv2
import numpy as np

__all__ = [
    'THING_CLASSES', 'STUFF_CLASSES', 'CLASSES', 'PALETTE', 'SceneConfig', 'Scene', 'SceneInstance', 'render_scene',
    'generate_demo_dataset', 'demo_dataset_is_complete', 'mask_to_rle', 'encode_segmentation'
]

THING_CLASSES = ('disc', 'square', 'triangle', 'ring', 'star')
STUFF_CLASSES = ('sky', 'grass', 'water', 'wall')
CLASSES = THING_CLASSES + STUFF_CLASSES
PALETTE = ((220, 20, 60), (255, 140, 0), (255, 215, 0), (138, 43, 226), (0, 191, 255), (135, 206, 250),
           (34, 139, 34), (0, 90, 160), (150, 60, 45))
SPLITS = ('train', 'val')
META_FILE = 'demo_meta.json'
_SKY, _GRASS, _WATER, _WALL = range(len(STUFF_CLASSES))


@dataclass(frozen=True)
class SceneConfig:
    """How scenes look. Sizes are in pixels; ``max_object_size`` is a fraction of the shorter image side."""
    height: int = 256
    width: int = 256
    min_objects: int = 1
    max_objects: int = 6
    min_object_size: float = 12.
    max_object_size: float = 0.65
    min_visible_fraction: float = 0.5
    min_visible_pixels: int = 16
    crowd_prob: float = 0.1


@dataclass
class SceneInstance:
    """One thing: ``label`` indexes :data:`THING_CLASSES`; ``mask``: (H, W) bool, the visible pixels."""
    label: int
    mask: np.ndarray
    iscrowd: bool

    @property
    def bbox(self):
        """``[x, y, w, h]`` of the visible mask (COCO convention, integer pixels)."""
        ys, xs = np.nonzero(self.mask)
        return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]

    @property
    def area(self):
        return int(self.mask.sum())


@dataclass
class Scene:
    """``image``: (H, W, 3) uint8 BGR; ``stuff``: (H, W) uint8 index into :data:`STUFF_CLASSES` (under things
    too); ``instances`` in drawing order (bottom first)."""
    image: np.ndarray
    stuff: np.ndarray
    instances: List[SceneInstance]

    def panoptic(self):
        """COCO panoptic: (H, W) int64 segment ids (stuff segments 1..S, then one per thing; no void) and their
        ``segments_info`` (``category_id``: things 1-5, stuff 6-9), things first."""
        stuff_indices = np.unique(self.stuff).tolist()
        segment_map = np.searchsorted(stuff_indices, self.stuff).astype(np.int64) + 1
        segments = []
        for k, inst in enumerate(self.instances):
            segment_id = len(stuff_indices) + k + 1
            segment_map[inst.mask] = segment_id
            segments.append(dict(id=segment_id, category_id=inst.label + 1, iscrowd=int(inst.iscrowd),
                                 bbox=inst.bbox, area=inst.area))
        for k, stuff_index in enumerate(stuff_indices):
            region = SceneInstance(-1, segment_map == k + 1, False)
            if region.area:  # a stuff region entirely under things has no segment
                segments.append(dict(id=k + 1, category_id=len(THING_CLASSES) + stuff_index + 1, iscrowd=0,
                                     bbox=region.bbox, area=region.area))
        return segment_map, segments

    def semantic_map(self):
        """(H, W) uint8 ADE20K-style labels: 0 = ignore (crowd), ``k + 1`` = :data:`CLASSES` index ``k``."""
        labels = self.stuff.astype(np.uint8) + len(THING_CLASSES) + 1
        for inst in self.instances:
            labels[inst.mask] = 0 if inst.iscrowd else inst.label + 1
        return labels


# ----------------------------------------------------------------------------------------------- stuff textures
def _smooth_noise(rng, height, width, cells):
    """Low-frequency noise in [0, 1]: a ``cells x cells`` random grid upsampled bicubically, (H, W) float32."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC), 0., 1.)


def _noise(rng, shape, sigma):
    """Gaussian pixel noise, float32."""
    return sigma * rng.standard_normal(shape, dtype=np.float32)


def _sky(rng, yy, xx):
    height, width = yy.shape
    top = np.float32([60., 120., 205.]) + rng.uniform(-20, 20, 3).astype(np.float32)
    bottom = np.float32([175., 210., 245.]) + rng.uniform(-15, 10, 3).astype(np.float32)
    t = (yy / height)[..., None]
    img = top * (1 - t) + bottom * t
    clouds = np.clip(_smooth_noise(rng, height, width, 5) - 0.55, 0., 1.)[..., None] * 2.2
    return img * (1 - clouds) + 245. * clouds + _noise(rng, yy.shape + (1, ), 3)


def _grass(rng, yy, xx):
    height, width = yy.shape
    base = np.float32([55., 140., 45.]) + rng.uniform(-20, 20, 3).astype(np.float32)
    patches = 0.7 + 0.6 * _smooth_noise(rng, height, width, 8)[..., None]
    blades = 18. * np.sin(xx * rng.uniform(1.2, 2.2) + 4. * _smooth_noise(rng, height, width, 12))[..., None]
    return base * patches + blades + _noise(rng, yy.shape + (3, ), 14)


def _water(rng, yy, xx):
    base = np.float32([25., 95., 150.]) + rng.uniform(-15, 15, 3).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    waves = np.sin(yy * rng.uniform(0.35, 0.7) + 2.5 * np.sin(xx * rng.uniform(0.03, 0.08) + phase))
    return base + 28. * waves[..., None] * np.float32([0.6, 0.9, 1.0]) + _noise(rng, yy.shape + (3, ), 5)


def _wall(rng, yy, xx):
    brick_h = int(rng.integers(8, 15))
    brick_w = int(brick_h * rng.uniform(1.8, 2.6))
    row = (yy // brick_h).astype(np.int64)
    shifted = xx + (row % 2) * (brick_w // 2)
    col = (shifted // brick_w).astype(np.int64)
    tints = rng.uniform(0.75, 1.2, (row.max() + 1, col.max() + 1)).astype(np.float32)
    brick = np.float32([150., 65., 45.]) + rng.uniform(-20, 20, 3).astype(np.float32)
    img = brick * tints[row, col][..., None]
    mortar = (yy % brick_h < 2) | (shifted % brick_w < 2)
    img[mortar] = np.array([175., 172., 160.])
    return img + _noise(rng, yy.shape + (3, ), 7)


_TEXTURES = {_SKY: _sky, _GRASS: _grass, _WATER: _water, _WALL: _wall}


def _stuff_layout(rng, yy, xx):
    """(H, W) stuff indices: sky over a wavy horizon, grass and/or water below, sometimes a wall on the horizon."""
    height, width = yy.shape
    cols = xx[0]
    horizon = height * (rng.uniform(0.25, 0.6) +
                        rng.uniform(0., 0.05) * np.sin(2 * np.pi * cols / width * rng.uniform(0.5, 2.) +
                                                      rng.uniform(0, 2 * np.pi)))
    ground = rng.random()
    if ground < 0.7:
        x_top, x_bottom = rng.uniform(0.1, 0.9, 2) * width
        t = (yy - horizon[None]) / np.maximum(height - horizon[None], 1.)
        left_of_line = xx < x_top + (x_bottom - x_top) * t
        first, second = (_GRASS, _WATER) if rng.random() < 0.5 else (_WATER, _GRASS)
        below = np.where(left_of_line, first, second)
    else:
        below = np.full(yy.shape, _GRASS if ground < 0.85 else _WATER)
    stuff = np.where(yy < horizon[None], _SKY, below).astype(np.uint8)
    if rng.random() < 0.6:
        x0 = rng.uniform(0., 0.7) * width
        x1 = x0 + rng.uniform(0.2, 0.6) * width
        top = rng.uniform(0.05, 0.8) * horizon.min()
        stuff[(xx >= x0) & (xx < x1) & (yy >= top) & (yy < horizon[None])] = _WALL
    return stuff


# ------------------------------------------------------------------------------------------------ thing shapes
def _unit_polygon(kind, rng):
    """Outline of a thing of unit size centred on the origin, (N, 2) as (x, y); a ring also returns its hole."""
    if kind in ('disc', 'ring'):
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        outer = 0.5 * np.stack([np.cos(t), np.sin(t)], 1)
        return outer, (outer * rng.uniform(0.45, 0.65) if kind == 'ring' else None)
    if kind == 'square':
        return np.array([[-.5, -.5], [.5, -.5], [.5, .5], [-.5, .5]]), None
    if kind == 'triangle':
        t = np.deg2rad([-90., 30., 150.])
        return 0.6 * np.stack([np.cos(t), np.sin(t)], 1), None
    t = np.deg2rad(-90. + 36. * np.arange(10))
    radius = np.where(np.arange(10) % 2 == 0, 0.55, 0.55 * rng.uniform(0.38, 0.5))
    return radius[:, None] * np.stack([np.cos(t), np.sin(t)], 1), None


def _fill(mask, polygon, value):
    """Rasterise a float (N, 2) polygon into ``mask`` with 1/16 pixel precision (no anti-aliasing)."""
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], value, lineType=cv2.LINE_8, shift=4)


def _thing_mask(rng, kind, cfg):
    """(H, W) bool full (unoccluded) mask of one randomly placed, sized, stretched and rotated thing."""
    size = np.exp(rng.uniform(np.log(cfg.min_object_size), np.log(cfg.max_object_size * min(cfg.height,
                                                                                                 cfg.width))))
    aspect = np.exp(rng.uniform(-0.4, 0.4)) if kind != 'star' else np.exp(rng.uniform(-0.15, 0.15))
    angle = rng.uniform(0, 2 * np.pi)
    centre = rng.uniform(0.08, 0.92, 2) * np.array([cfg.width, cfg.height])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scale = size * np.array([np.sqrt(aspect), 1 / np.sqrt(aspect)])

    def place(polygon):
        return (polygon * scale) @ rotation.T + centre

    outer, hole = _unit_polygon(kind, rng)
    mask = np.zeros((cfg.height, cfg.width), np.uint8)
    _fill(mask, place(outer), 1)
    if hole is not None:
        _fill(mask, place(hole), 0)
    return mask.astype(bool)


def _crowd_mask(rng, cfg):
    """(H, W) bool mask of a cluster of 8-15 tiny discs (annotated as one ``iscrowd`` disc)."""
    mask = np.zeros((cfg.height, cfg.width), np.uint8)
    centre = rng.uniform(0.15, 0.85, 2) * np.array([cfg.width, cfg.height])
    spread = 0.06 * min(cfg.height, cfg.width)
    for _ in range(int(rng.integers(8, 16))):
        x, y = centre + rng.normal(0, spread, 2)
        cv2.circle(mask, (int(round(x)), int(round(y))), int(rng.integers(2, 4)), 1, -1)
    return mask.astype(bool)


def _thing_colour(rng):
    """A vivid random colour, (3,) float BGR."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.55, 1.), rng.uniform(0.55, 1.))
    return 255. * np.array([b, g, r])


def render_scene(rng, cfg=SceneConfig()):
    """Draw one scene from ``rng`` (a ``numpy.random.Generator``). Returns a :class:`Scene`."""
    yy, xx = np.mgrid[0:cfg.height, 0:cfg.width].astype(np.float32)
    stuff = _stuff_layout(rng, yy, xx)
    image = np.zeros((cfg.height, cfg.width, 3), np.float32)
    for index, texture in _TEXTURES.items():
        region = stuff == index
        if region.any():
            image[region] = texture(rng, yy, xx)[region][:, ::-1]

    things = []
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        label = int(rng.integers(len(THING_CLASSES)))
        things.append((label, _thing_mask(rng, THING_CLASSES[label], cfg), False))
    if rng.random() < cfg.crowd_prob:
        things.append((THING_CLASSES.index('disc'), _crowd_mask(rng, cfg), True))

    # Visibility from the top of the z-order down: a thing hidden too much is dropped, never drawn.
    covered = np.zeros((cfg.height, cfg.width), bool)
    kept = []
    for label, full, iscrowd in reversed(things):
        visible = full & ~covered
        needed = cfg.min_visible_pixels if iscrowd else max(cfg.min_visible_pixels,
                                                            cfg.min_visible_fraction * full.sum())
        if visible.sum() >= needed:
            kept.append((label, full, visible, iscrowd))
            covered |= full
    kept.reverse()

    instances = []
    for label, full, visible, iscrowd in kept:
        colour = _thing_colour(rng)
        ys, xs = np.nonzero(full)
        direction = rng.uniform(0, 2 * np.pi)
        extent = max(np.ptp(xs), np.ptp(ys), 1)
        ramp = ((xs - xs.mean()) * np.cos(direction) + (ys - ys.mean()) * np.sin(direction)) / extent
        image[ys, xs] = colour * (1. + 0.3 * ramp)[:, None] + _noise(rng, (len(xs), 3), 4)
        instances.append(SceneInstance(label, visible, iscrowd))
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Scene(image, stuff, instances)


# ------------------------------------------------------------------------------------------------- encodings
def mask_to_rle(mask):
    """Uncompressed COCO RLE of a (H, W) bool mask: column-major run lengths starting with a run of zeros."""
    flat = np.asarray(mask, bool).T.reshape(-1)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat[0]:
        counts = [0] + counts
    return {'size': [int(mask.shape[0]), int(mask.shape[1])], 'counts': counts}


def encode_segmentation(mask):
    """COCO ``segmentation``: one polygon when the mask is a single region without holes, else uncompressed RLE.

    The polygon runs through the centres of the boundary pixels (COCO coordinates: pixel ``(x, y)`` spans
    ``[x, x + 1) x [y, y + 1)``), so its rasterisation never leaves the mask.
    """
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) == 1 and hierarchy[0][0][2] < 0 and len(contours[0]) >= 3:
        return [(contours[0].reshape(-1) + 0.5).tolist()]
    return mask_to_rle(mask)


def _panoptic_png(segment_map):
    """(H, W) segment ids -> (H, W, 3) BGR image whose RGB encodes ``id = R + 256 G + 256^2 B``."""
    rgb = np.stack([segment_map % 256, segment_map // 256 % 256, segment_map // 65536], -1).astype(np.uint8)
    return rgb[..., ::-1]


def _square_crop(image, bbox, crop_size):
    """A square crop around ``bbox`` with 25% context, edge-replicated where it leaves the image, resized."""
    x, y, w, h = bbox
    side = int(np.ceil(1.25 * max(w, h)))
    x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
    pad = side
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    return cv2.resize(crop, (crop_size, crop_size), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------------ the writer
def _categories():
    things = [dict(id=i + 1, name=name, supercategory='shape', isthing=1, color=list(PALETTE[i]))
              for i, name in enumerate(THING_CLASSES)]
    stuff = [dict(id=len(THING_CLASSES) + i + 1, name=name, supercategory='stuff', isthing=0,
                  color=list(PALETTE[len(THING_CLASSES) + i])) for i, name in enumerate(STUFF_CLASSES)]
    return things, stuff


def _write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def _write_split(root, split, num_images, seed, cfg, crop_size):
    split_code = SPLITS.index(split)
    img_dir = osp.join(root, 'images', split)
    pan_dir = osp.join(root, 'annotations', f'panoptic_{split}')
    sem_dir = osp.join(root, 'annotations', f'semantic_{split}')
    cls_root = osp.join(root, 'classification')
    for folder in [img_dir, pan_dir, sem_dir] + [osp.join(cls_root, split, c) for c in THING_CLASSES]:
        os.makedirs(folder, exist_ok=True)
    os.makedirs(osp.join(cls_root, 'meta'), exist_ok=True)
    thing_cats, stuff_cats = _categories()

    images, instances, panoptic, crops = [], [], [], []
    for idx in range(num_images):
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_code, idx]))
        scene = render_scene(rng, cfg)
        name = f'{idx:06d}'
        cv2.imwrite(osp.join(img_dir, name + '.jpg'), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(osp.join(sem_dir, name + '.png'), scene.semantic_map())
        images.append(dict(id=idx, file_name=name + '.jpg', height=cfg.height, width=cfg.width))

        segment_map, segments = scene.panoptic()
        for k, inst in enumerate(scene.instances):
            instances.append(dict(id=len(instances) + 1, image_id=idx, category_id=inst.label + 1, bbox=inst.bbox,
                                  area=inst.area, iscrowd=int(inst.iscrowd),
                                  segmentation=encode_segmentation(inst.mask)))
            if not inst.iscrowd and min(inst.bbox[2:]) >= 6:
                crop_name = f'{name}_{k:02d}.jpg'
                cls_name = THING_CLASSES[inst.label]
                cv2.imwrite(osp.join(cls_root, split, cls_name, crop_name),
                            _square_crop(scene.image, inst.bbox, crop_size), [cv2.IMWRITE_JPEG_QUALITY, 95])
                crops.append(f'{cls_name}/{crop_name} {inst.label}')
        cv2.imwrite(osp.join(pan_dir, name + '.png'), _panoptic_png(segment_map))
        panoptic.append(dict(image_id=idx, file_name=name + '.png', segments_info=segments))

    info = dict(description=f'mmvit_ext demo scenes, {split} split', version='1.0', year=2026)
    _write_json(osp.join(root, 'annotations', f'instances_{split}.json'),
                dict(info=info, licenses=[], images=images, annotations=instances,
                     categories=[{k: c[k] for k in ('id', 'name', 'supercategory')} for c in thing_cats]))
    _write_json(osp.join(root, 'annotations', f'panoptic_{split}.json'),
                dict(info=info, licenses=[], images=images, annotations=panoptic,
                     categories=thing_cats + stuff_cats))
    with open(osp.join(cls_root, 'meta', f'{split}.txt'), 'w') as f:
        f.write(''.join(line + '\n' for line in crops))
    return dict(images=num_images, instances=len(instances), crops=len(crops))


def _meta(num_train, num_val, seed, cfg, crop_size):
    return dict(num_train=num_train, num_val=num_val, seed=seed, crop_size=crop_size, scene=asdict(cfg))


def demo_dataset_is_complete(root, num_train=200, num_val=50, seed=0, cfg=SceneConfig(), crop_size=64):
    """True when ``root`` holds a finished dataset written with these same arguments."""
    try:
        with open(osp.join(root, META_FILE)) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return {k: meta.get(k) for k in ('num_train', 'num_val', 'seed', 'crop_size', 'scene')} == _meta(
        num_train, num_val, seed, cfg, crop_size)


def generate_demo_dataset(root, num_train=200, num_val=50, seed=0, cfg=SceneConfig(), crop_size=64):
    """Write the train and val splits under ``root`` in all four formats; returns per-split counts.

    ``demo_meta.json`` is written last, so an interrupted run is never mistaken for a finished one.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'each split needs at least one image, got num_train={num_train}, num_val={num_val}')
    if cfg.height < 32 or cfg.width < 32:
        raise ValueError(f'images must be at least 32x32, got {cfg.height}x{cfg.width}')
    meta_path = osp.join(root, META_FILE)
    if osp.exists(meta_path):
        os.remove(meta_path)
    for folder in ('images', 'annotations', 'classification'):  # no stale files from an earlier, bigger run
        shutil.rmtree(osp.join(root, folder), ignore_errors=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    counts = {split: _write_split(root, split, n, seed, cfg, crop_size)
              for split, n in zip(SPLITS, (num_train, num_val))}
    meta = _meta(num_train, num_val, seed, cfg, crop_size)
    meta['counts'] = counts
    _write_json(meta_path, meta)
    return counts
