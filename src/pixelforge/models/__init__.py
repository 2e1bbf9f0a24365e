"""Model families. Each registers here, explicitly."""

from pixelforge.models.dcgan import DCGAN, DCGANConfig
from pixelforge.models.diffusion import DiffusionConfig, DiffusionModel
from pixelforge.models.restore import RestoreConfig, RestoreModel
from pixelforge.models.stylegan import StyleGAN, StyleGANConfig
from pixelforge.models.vae import VAE, VAEConfig
from pixelforge.registry import Family, register
from pixelforge.training.config import TINY_TRAIN
from pixelforge.training.diffusion import TINY as DIFFUSION_TINY
from pixelforge.training.diffusion import DiffusionTask, DiffusionTrainConfig
from pixelforge.training.gan import GANTask, GANTrainConfig
from pixelforge.training.restore import INIT_FREE as RESTORE_INIT_FREE
from pixelforge.training.restore import TINY as RESTORE_TINY
from pixelforge.training.restore import RestoreTask, RestoreTrainConfig
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

register(
    Family(
        name="restore",
        summary="Restoration: super-resolution (x2/x3/x4), denoising, JPEG repair, colorization, inpainting, uncropping",
        config_cls=RestoreConfig,
        train_config_cls=RestoreTrainConfig,
        model_cls=RestoreModel,
        task_cls=RestoreTask,
        tiny=RESTORE_TINY,
        kind="image2image",
        init_free=RESTORE_INIT_FREE,
    )
)

# ---- matting (background removal) ----
from pixelforge.models.matting import MattingConfig, MattingNet  # noqa: E402
from pixelforge.training.matting import TINY as MATTING_TINY  # noqa: E402
from pixelforge.training.matting import MattingTask, MattingTrainConfig  # noqa: E402

register(
    Family(
        name="matting",
        summary="Alpha matting / background removal: small U-Net, L1 + Laplacian loss on alpha",
        config_cls=MattingConfig,
        train_config_cls=MattingTrainConfig,
        model_cls=MattingNet,
        task_cls=MattingTask,
        tiny=MATTING_TINY,
        kind="image2image",
        data_kind="mattes",
    )
)

# ---------------------------------------------------------------- image-to-image translation
from pixelforge.models.cyclegan import CycleGAN, CycleGANConfig  # noqa: E402
from pixelforge.models.pix2pix import Pix2Pix, Pix2PixConfig  # noqa: E402
from pixelforge.training.cyclegan import TINY as CYCLEGAN_TINY  # noqa: E402
from pixelforge.training.cyclegan import CycleGANTask, CycleGANTrainConfig  # noqa: E402
from pixelforge.training.pix2pix import TINY as PIX2PIX_TINY  # noqa: E402
from pixelforge.training.pix2pix import Pix2PixTask, Pix2PixTrainConfig  # noqa: E402

register(
    Family(
        name="pix2pix",
        summary="pix2pix: U-Net generator + conditional PatchGAN, L1 + GAN, on paired A->B data",
        config_cls=Pix2PixConfig,
        train_config_cls=Pix2PixTrainConfig,
        model_cls=Pix2Pix,
        task_cls=Pix2PixTask,
        tiny=PIX2PIX_TINY,
        kind="image2image",
        data_kind="paired",
    )
)

register(
    Family(
        name="cyclegan",
        summary="CycleGAN: two ResNet generators, LSGAN PatchGANs, cycle + identity L1, image pools",
        config_cls=CycleGANConfig,
        train_config_cls=CycleGANTrainConfig,
        model_cls=CycleGAN,
        task_cls=CycleGANTask,
        tiny=CYCLEGAN_TINY,
        kind="image2image",
        data_kind="unpaired",
    )
)

# ---- palette (image-to-image diffusion) ----
from pixelforge.models.palette import PaletteConfig, PaletteModel  # noqa: E402
from pixelforge.training.palette import TINY as PALETTE_TINY  # noqa: E402
from pixelforge.training.palette import PaletteTask, PaletteTrainConfig  # noqa: E402

register(
    Family(
        name="palette",
        summary="Palette: conditional diffusion (UNet2DModel, concat conditioning) for inpaint/uncrop/colorize/jpeg/multi",
        config_cls=PaletteConfig,
        train_config_cls=PaletteTrainConfig,
        model_cls=PaletteModel,
        task_cls=PaletteTask,
        tiny=PALETTE_TINY,
        kind="image2image",
    )
)

# ---- fast-style (Johnson et al. 2016 fast neural style) ----
from pixelforge.models.fast_style import FastStyle, FastStyleConfig  # noqa: E402
from pixelforge.training.fast_style import TINY as FAST_STYLE_TINY  # noqa: E402
from pixelforge.training.fast_style import FastStyleTask, FastStyleTrainConfig  # noqa: E402

register(
    Family(
        name="fast-style",
        summary="Fast neural style (Johnson et al.): feed-forward transformer net, VGG16 content + Gram style loss",
        config_cls=FastStyleConfig,
        train_config_cls=FastStyleTrainConfig,
        model_cls=FastStyle,
        task_cls=FastStyleTask,
        tiny=FAST_STYLE_TINY,
        kind="image2image",
    )
)

# ---- radiance fields (NeRF): grid (TensoRF-VM, the default) and classic MLP ----
from pixelforge.nerf.grid import GridField, NerfGridConfig  # noqa: E402
from pixelforge.nerf.mlp import NerfMLP, NerfMLPConfig  # noqa: E402
from pixelforge.training.nerf import (  # noqa: E402
    GRID_TINY,
    MLP_TINY,
    NerfGridTask,
    NerfGridTrainConfig,
    NerfMLPTask,
    NerfMLPTrainConfig,
    open_scene_data,
)

register(
    Family(
        name="nerf-grid",
        summary="Radiance field on factorised grids (TensoRF-VM) + small colour MLP, occupancy skipping",
        config_cls=NerfGridConfig,
        train_config_cls=NerfGridTrainConfig,
        model_cls=GridField,
        task_cls=NerfGridTask,
        tiny=GRID_TINY,
        kind="radiance-field",
        data_kind="scene",
        open_data=open_scene_data,
    )
)

register(
    Family(
        name="nerf-mlp",
        summary="Classic NeRF: positional encoding, 8-layer MLPs, coarse + fine hierarchical sampling",
        config_cls=NerfMLPConfig,
        train_config_cls=NerfMLPTrainConfig,
        model_cls=NerfMLP,
        task_cls=NerfMLPTask,
        tiny=MLP_TINY,
        kind="radiance-field",
        data_kind="scene",
        open_data=open_scene_data,
    )
)
