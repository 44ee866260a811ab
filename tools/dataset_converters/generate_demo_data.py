"""Write the embedded demo dataset: seeded synthetic scenes as COCO instances, COCO panoptic, ADE20K-style
semantic maps and an ImageNet-style classification folder (see ``mmvit_ext/datasets/demo_scenes.py``).

    python tools/dataset_converters/generate_demo_data.py                      # data/demo, 600 train + 50 val
    python tools/dataset_converters/generate_demo_data.py --root /tmp/scenes --num-train 500 --size 320 --seed 1

Layout under ROOT:
    images/{train,val}/*.jpg
    annotations/instances_{train,val}.json                 COCO instances (things)
    annotations/panoptic_{train,val}.json + panoptic_{train,val}/*.png   COCO panoptic (things + stuff)
    annotations/semantic_{train,val}/*.png                 ADE20K-style labels (0 = ignore, reduce_zero_label=True)
    classification/{train,val}/<class>/*.jpg + classification/meta/{train,val}.txt   object crops
    demo_meta.json                                         the arguments; written last
"""
import argparse
import importlib.util
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_generator():
    """The generator module, loaded from its file: writing data needs numpy and OpenCV only, not the model zoo
    that ``import mmvit_ext`` registers (mmcv ops, mmdet, mmseg, mmpretrain)."""
    path = osp.join(ROOT, 'mmvit_ext', 'datasets', 'demo_scenes.py')
    spec = importlib.util.spec_from_file_location('mmvit_ext_demo_scenes', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate the mmvit_ext demo scene dataset')
    parser.add_argument('--root', default='data/demo', help='output folder (default: data/demo)')
    parser.add_argument('--num-train', type=int, default=600, help='training images (default: 600)')
    parser.add_argument('--num-val', type=int, default=50, help='validation images (default: 50)')
    parser.add_argument('--size', type=int, nargs='+', default=[256], metavar='PX',
                        help='image size: one value (square) or HEIGHT WIDTH (default: 256)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--max-objects', type=int, default=6, help='most things per image before occlusion')
    parser.add_argument('--crop-size', type=int, default=64, help='side of the classification crops (default: 64)')
    parser.add_argument('--if-absent', action='store_true',
                        help='do nothing when ROOT already holds a dataset generated with the same arguments')
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2):
        parser.error('--size takes one value or two (HEIGHT WIDTH)')
    return args


def main(argv=None):
    args = parse_args(argv)
    scenes = load_generator()
    height, width = args.size * 2 if len(args.size) == 1 else args.size
    cfg = scenes.SceneConfig(height=height, width=width, max_objects=args.max_objects)
    kwargs = dict(num_train=args.num_train, num_val=args.num_val, seed=args.seed, cfg=cfg, crop_size=args.crop_size)
    if args.if_absent and scenes.demo_dataset_is_complete(args.root, **kwargs):
        print(f'demo dataset already present in {args.root}')
        return
    start = time.time()
    counts = scenes.generate_demo_dataset(args.root, **kwargs)
    for split, c in counts.items():
        print(f'{split}: {c["images"]} images, {c["instances"]} instances, {c["crops"]} crops')
    print(f'wrote the demo dataset ({height}x{width}, seed {args.seed}) to {args.root} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
