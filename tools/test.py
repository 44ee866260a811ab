"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config (the config's ``default_scope`` decides)."""
import argparse
import os
import os.path as osp
import warnings

# mmengine 0.10.7 and mmcv import pkg_resources, and setuptools warns about that twice per run: not actionable.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API')

from mmengine.config import DictAction

import mmvit_ext  # noqa: F401  (registers our models even for configs without custom_imports)
from mmvit_ext.engine import (adapt_launcher_to_device, add_checkpoint_args, build_runner, distributed_teardown,
                              explain_errors, install_checkpoint_loader, load_config, work_dir_for)
from mmvit_ext.model_checks import check_model, config_errors_as_exit
from mmvit_ext.quiet import drop_checkpoint_backend_lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='save raw results: a .pkl file (mmdet, mmpretrain) or a folder of '
                        'prediction maps (mmseg)')
    parser.add_argument('--show-dir', help='save images with drawn predictions into this folder (under work_dir)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (needs tta_model/tta_pipeline '
                        'in mmseg and mmpretrain configs; mmdet uses a flip TTA by default)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. test_dataloader.batch_size=1')
    add_checkpoint_args(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _add_metric(cfg, metric):
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, (list, tuple)):
        cfg.test_evaluator = [*evaluator, metric]
    elif 'metrics' in evaluator:
        evaluator.metrics = [*evaluator.metrics, metric] if isinstance(evaluator.metrics, list) else \
            [evaluator.metrics, metric]
    else:
        cfg.test_evaluator = [evaluator, metric]


def _apply_out(cfg, scope, out):
    if scope == 'mmseg':
        cfg.test_evaluator.update(output_dir=out, keep_results=True)
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise SystemExit(f'--out must be a .pkl or .pickle file, got {out}')
    dump = 'DumpDetResults' if scope == 'mmdet' else 'DumpResults'  # the latter is mmengine's
    _add_metric(cfg, dict(type=dump, out_file_path=out))


def _apply_show_dir(cfg, scope, show_dir):
    if scope != 'mmdet':  # mmdet itself puts it under work_dir/<timestamp>/
        show_dir = osp.join(cfg.work_dir, show_dir)
    if scope == 'mmseg':
        cfg.visualizer.save_dir = show_dir
        cfg.default_hooks.visualization.update(draw=True, interval=1)
        return
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise SystemExit('--show-dir needs a VisualizationHook in default_hooks of the config')
    if scope == 'mmpretrain':
        hook.update(enable=True, interval=1, out_dir=show_dir)
    else:
        hook.update(draw=True, test_out_dir=show_dir)


def _apply_tta(cfg, scope):
    if scope == 'mmdet':
        # mmdet's default: horizontal-flip TTA around the config's own test pipeline, merged by NMS.
        cfg.setdefault('tta_model', dict(type='DetTTAModel', tta_cfg=dict(
            nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
        if 'tta_pipeline' not in cfg:
            pipeline = list(cfg.test_dataloader.dataset.pipeline)
            pack = dict(pipeline[-1], meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                                 'flip', 'flip_direction'))
            flips = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)]
            cfg.tta_pipeline = [*pipeline[:-1], dict(type='TestTimeAug', transforms=[flips, [pack]])]
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise SystemExit('--tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def build_cfg(args):
    cfg = load_config(args.config, args.cfg_options)
    scope = cfg.get('default_scope')
    cfg.launcher = args.launcher
    cfg.work_dir = work_dir_for(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.out:
        _apply_out(cfg, scope, args.out)
    if args.show_dir:
        _apply_show_dir(cfg, scope, args.show_dir)
    if args.tta:
        _apply_tta(cfg, scope)
    adapt_launcher_to_device(cfg)
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise SystemExit(f'error: checkpoint file not found: {args.checkpoint}')
    return cfg


def run_test(args) -> dict:
    cfg = build_cfg(args)
    install_checkpoint_loader(trust=args.trust_checkpoint)
    drop_checkpoint_backend_lines()
    runner = build_runner(cfg, strict=not args.non_strict)
    check_model(runner.model)
    return runner.test()


def main(argv=None):
    args = parse_args(argv)
    with explain_errors(args.config), config_errors_as_exit(args.config), distributed_teardown():
        return run_test(args)


if __name__ == '__main__':
    main()
