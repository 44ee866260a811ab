"""Train a model from an mmdet, mmseg or mmpretrain config (the config's ``default_scope`` decides)."""
import argparse
import os
import sys
import warnings

# mmengine 0.10.7 and mmcv import pkg_resources, and setuptools warns about that twice per run: not actionable.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API')

from mmengine.config import Config, DictAction
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available

import mmvit_ext  # noqa: F401  (registers our models even for configs without custom_imports)
from mmvit_ext.engine import (adapt_launcher_to_device, add_checkpoint_args, build_runner, distributed_teardown,
                              explain_errors, install_checkpoint_loader, load_config, use_atomic_checkpoints,
                              work_dir_for)
from mmvit_ext.model_checks import check_config_keys, check_model, config_errors_as_exit
from mmvit_ext.quiet import drop_checkpoint_backend_lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector, segmentor or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by (total batch size / auto_scale_lr.base_batch_size)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or without a value from the latest one in work_dir')
    parser.add_argument('--no-validate', action='store_true', help='do not evaluate during training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. train_cfg.max_epochs=2 "a.b=[1,2]"')
    add_checkpoint_args(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    # torch.distributed.launch passes --local-rank (torch>=2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.amp and not (is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()):
        parser.error('--amp needs a GPU (or an NPU / MLU / MUSA device): mmengine\'s AmpOptimWrapper does not run '
                     'on CPU, and this machine has none. Train without --amp.')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args) -> Config:
    cfg = load_config(args.config, args.cfg_options)
    check_config_keys(cfg, args.config)
    cfg.launcher = args.launcher
    cfg.work_dir = work_dir_for(cfg, args.config, args.work_dir)
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print('AMP is already enabled in the config', file=sys.stderr)
        elif wrapper != 'OptimWrapper':
            raise SystemExit(f'--amp needs optim_wrapper.type "OptimWrapper", the config has "{wrapper}"')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise SystemExit('--auto-scale-lr needs "auto_scale_lr = dict(base_batch_size=...)" in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    adapt_launcher_to_device(cfg)
    use_atomic_checkpoints(cfg)
    return cfg


def run_train(args):
    cfg = build_cfg(args)
    install_checkpoint_loader(trust=args.trust_checkpoint)
    drop_checkpoint_backend_lines()
    runner = build_runner(cfg, strict=not args.non_strict)
    check_model(runner.model)
    runner.train()


def main(argv=None):
    args = parse_args(argv)
    with explain_errors(args.config), config_errors_as_exit(args.config), distributed_teardown():
        run_train(args)


if __name__ == '__main__':
    main()
