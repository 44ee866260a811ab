"""A checkpoint hook that never leaves a run without a complete checkpoint to resume from."""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose saves are atomic: a kill at any instant leaves one complete checkpoint and a
    ``last_checkpoint`` file naming it.

    mmengine's hook removes the oldest kept checkpoint before writing the new one and rewrites ``last_checkpoint``
    in place, so a kill during a save with ``max_keep_ckpts=1`` leaves nothing to resume from. Here the new
    checkpoint is written under a temporary name in the same folder and renamed, then ``last_checkpoint`` is
    replaced the same way, and only then is the old checkpoint removed. Registered in mmengine's root ``HOOKS``,
    so it resolves under the mmdet, mmseg and mmpretrain scopes alike; same arguments as ``CheckpointHook``.
    """

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process() and '://' not in str(self.out_dir) and osp.isdir(self.out_dir):
            for name in os.listdir(self.out_dir):  # left by a run killed inside a save
                if name.startswith('.') and name.endswith('.partial'):
                    os.remove(osp.join(self.out_dir, name))

    def _save_checkpoint_with_step(self, runner, step, meta):
        if '://' in str(self.out_dir):  # remote storage has no atomic rename: mmengine's own behaviour
            return super()._save_checkpoint_with_step(runner, step, meta)
        expired = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        partial = f'.{filename}.partial'
        runner.save_checkpoint(self.out_dir, partial, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        self._publish(self.file_backend.join_path(self.out_dir, partial), self.last_ckpt)
        self._publish_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if expired is not None and expired != step:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(expired))
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)

    @staticmethod
    def _publish(partial: str, final: str):
        """Give the fully written ``partial`` file its ``final`` name in one step (``os.replace`` is atomic)."""
        os.replace(partial, final)

    @classmethod
    def _publish_text(cls, path: str, text: str):
        partial = osp.join(osp.dirname(path), f'.{osp.basename(path)}.partial')
        with open(partial, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        cls._publish(partial, path)
