"""Model families. Each registers here, explicitly."""

from pixelforge.models.dcgan import DCGAN, DCGANConfig
from pixelforge.registry import Family, register
from pixelforge.training.gan import GANTask, GANTrainConfig


class DCGANTask(GANTask):
    model_cls = DCGAN


register(
    Family(
        name="dcgan",
        summary="DCGAN, unconditional or class-conditional (projection or concat); NS/hinge/LSGAN/WGAN-GP, R1, SN",
        config_cls=DCGANConfig,
        train_config_cls=GANTrainConfig,
        model_cls=DCGAN,
        task_cls=DCGANTask,
        tiny={
            "model": {"image_size": 8, "z_dim": 8, "g_width": 8, "d_width": 8},
            "train": {
                "steps": 2,
                "batch_size": 8,
                "checkpoint_every": 1,
                "sample_every": 0,
                "tensorboard": False,
            },
        },
    )
)
