"""Model families. Each registers here, explicitly."""

from pixelforge.models.dcgan import DCGAN, DCGANConfig
from pixelforge.models.diffusion import DiffusionConfig, DiffusionModel
from pixelforge.models.stylegan import StyleGAN, StyleGANConfig
from pixelforge.models.vae import VAE, VAEConfig
from pixelforge.registry import Family, register
from pixelforge.training.config import TINY_TRAIN
from pixelforge.training.diffusion import TINY as DIFFUSION_TINY
from pixelforge.training.diffusion import DiffusionTask, DiffusionTrainConfig
from pixelforge.training.gan import GANTask, GANTrainConfig
from pixelforge.training.stylegan import TINY as STYLEGAN_TINY
from pixelforge.training.stylegan import StyleGANTask, StyleGANTrainConfig
from pixelforge.training.vae import TINY as VAE_TINY
from pixelforge.training.vae import VAETask, VAETrainConfig


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
            "train": dict(TINY_TRAIN),
        },
    )
)

register(
    Family(
        name="vae",
        summary="Autoencoder / VAE (conv encoder-decoder, vector latent, beta); L2/L1/perceptual recon, VAE-GAN",
        config_cls=VAEConfig,
        train_config_cls=VAETrainConfig,
        model_cls=VAE,
        task_cls=VAETask,
        tiny=VAE_TINY,
    )
)

register(
    Family(
        name="diffusion",
        summary="Diffusion (diffusers UNet2DModel): epsilon/v objectives, DDPM/DDIM/DPM-Solver++, CFG",
        config_cls=DiffusionConfig,
        train_config_cls=DiffusionTrainConfig,
        model_cls=DiffusionModel,
        task_cls=DiffusionTask,
        tiny=DIFFUSION_TINY,
    )
)

register(
    Family(
        name="stylegan",
        summary="StyleGAN2-style: mapping to W, modulated convs, noise, style mixing, truncation; R1, ADA",
        config_cls=StyleGANConfig,
        train_config_cls=StyleGANTrainConfig,
        model_cls=StyleGAN,
        task_cls=StyleGANTask,
        tiny=STYLEGAN_TINY,
    )
)
