"""The Stable Diffusion backend against diffusers' and transformers' PyTorch models on the same weights.

A tiny random pipeline of SD 2.1-base's architecture (tests/sd_pipeline.py) is written with
save_pretrained (PyTorch weights only) and read back with the same from_pretrained calls a user's
run makes, which converts the weights to Flax. The PyTorch side is an independent computation:
the tokenizer and CLIPTextModel, two UNet2DConditionModel calls and the paper's CFG formula written
out here; torch's bilinear resize and AutoencoderKL's encoder mean.
"""
import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dreamfusion_jax import errors, runner, sds, train
from dreamfusion_jax.guidance import stable_diffusion as sd
from tests import sd_pipeline

torch = pytest.importorskip('torch')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = ['a DSLR photo of a delicious hamburger, front view', '']
RESOLUTION = 64  # VAE input size of the tiny pipeline (8x8 latents).


@pytest.fixture(scope='module')
def pipeline_dir(tmp_path_factory):
  return sd_pipeline.write_pipeline(str(tmp_path_factory.mktemp('sd') / 'tiny'))


@pytest.fixture(scope='module')
def backend(pipeline_dir):
  return sd.load(pipeline_dir, resolution=RESOLUTION)


@pytest.fixture(scope='module')
def torch_models(pipeline_dir):
  from diffusers import AutoencoderKL, UNet2DConditionModel
  from transformers import CLIPTextModel, CLIPTokenizer
  return dict(
      tokenizer=CLIPTokenizer.from_pretrained(pipeline_dir, subfolder='tokenizer'),
      text=CLIPTextModel.from_pretrained(pipeline_dir, subfolder='text_encoder').eval(),
      unet=UNet2DConditionModel.from_pretrained(pipeline_dir, subfolder='unet').eval(),
      vae=AutoencoderKL.from_pretrained(pipeline_dir, subfolder='vae').eval())


def torch_embed(models, prompts):
  ids = models['tokenizer'](prompts, padding='max_length', max_length=77, truncation=True,
                            return_tensors='pt').input_ids
  with torch.no_grad():
    return models['text'](ids)[0]


def test_eps_hat_from_prompt_strings_matches_pytorch(backend, torch_models):
  omega = 100.0  # The paper's guidance weight: amplifies any disagreement 201-fold.
  cond, uncond = np.split(backend.embed(PROMPTS), 2)
  rng = np.random.default_rng(0)
  z_t = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
  t = np.array([20, 700], np.int32)
  cond2, uncond2 = np.repeat(cond, 2, axis=0), np.repeat(uncond, 2, axis=0)
  ours = sds.guided_eps(backend, backend.params, jnp.asarray(z_t), jnp.asarray(t),
                        jnp.asarray(cond2), jnp.asarray(uncond2), omega)

  emb = torch_embed(torch_models, PROMPTS)
  np.testing.assert_allclose(cond[0], emb[0].numpy(), atol=1e-5)
  np.testing.assert_allclose(uncond[0], emb[1].numpy(), atol=1e-5)
  with torch.no_grad():
    unet = torch_models['unet']
    zt, tt = torch.from_numpy(z_t), torch.from_numpy(t).long()
    eps_c = unet(zt, tt, encoder_hidden_states=emb[:1].repeat(2, 1, 1)).sample.numpy()
    eps_u = unet(zt, tt, encoder_hidden_states=emb[1:].repeat(2, 1, 1)).sample.numpy()
  theirs = (1 + omega) * eps_c - omega * eps_u  # eps_hat of the paper's Eq. (CFG) [P §2].
  assert np.abs(eps_c - eps_u).max() > 1e-3  # The prompt matters, so CFG is exercised.
  # Each UNet call agrees to 1e-4 (float32 rounding, ~2e-5 measured); CFG's (1 + omega) eps_c -
  # omega eps_u can amplify that by at most 1 + 2 omega.
  both = backend.eps(backend.params, jnp.asarray(np.concatenate([z_t, z_t])),
                     jnp.asarray(np.concatenate([t, t])), jnp.asarray(np.concatenate([uncond2, cond2])))
  np.testing.assert_allclose(np.asarray(both), np.concatenate([eps_u, eps_c]), atol=1e-4)
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4 * (1 + 2 * omega))


def test_encode_matches_pytorch_resize_and_vae_mean(backend, torch_models):
  x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  ours = np.asarray(backend.encode(backend.params, jnp.asarray(x)))
  vae = torch_models['vae']
  with torch.no_grad():
    img = torch.from_numpy(x).permute(0, 3, 1, 2)
    img = torch.nn.functional.interpolate(img, size=(RESOLUTION, RESOLUTION), mode='bilinear',
                                          align_corners=False)
    theirs = vae.encode(2 * img - 1).latent_dist.mean * vae.config.scaling_factor
  assert ours.shape == (2, 4, RESOLUTION // 8, RESOLUTION // 8)
  np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-4)


def test_schedule_is_the_scaled_linear_alphas_cumprod(backend):
  betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
  np.testing.assert_allclose(backend.schedule.alphas_cumprod, np.cumprod(1 - betas), rtol=1e-5)
  assert backend.prediction_type == 'epsilon'


def _with_prediction_type(pipeline_dir, tmp_path, prediction_type):
  """A copy of the pipeline's scheduler config with another prediction_type."""
  path = tmp_path / 'pipe'
  shutil.copytree(os.path.join(pipeline_dir, 'scheduler'), path / 'scheduler')
  config_file = path / 'scheduler' / 'scheduler_config.json'
  config = json.loads(config_file.read_text())
  config['prediction_type'] = prediction_type
  config_file.write_text(json.dumps(config))
  return str(path)


def test_v_prediction_gives_the_eps_of_the_model_it_was_derived_from(backend, pipeline_dir,
                                                                      tmp_path):
  schedule, prediction_type = sd._load_schedule(  # pylint: disable=protected-access
      _with_prediction_type(pipeline_dir, tmp_path, 'v_prediction'), 'main')
  assert prediction_type == 'v_prediction'
  v_backend = dataclasses.replace(backend, schedule=schedule, prediction_type=prediction_type)

  # The v-model of the epsilon model: with x_hat = (z - sigma eps) / alpha,
  # v = alpha eps - sigma x_hat = (eps - sigma z) / alpha, exactly.
  def v_model(params, z_t, t, emb):
    alpha, sigma = backend.schedule.alpha_sigma(t)
    a, s = alpha[:, None, None, None], sigma[:, None, None, None]
    return (backend.predict(params, z_t, t, emb) - s * z_t) / a

  v_backend.predict = v_model
  z_t = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 8, 8))
  t = jnp.array([20, 500, 980])
  emb = jnp.asarray(np.repeat(backend.embed(PROMPTS[:1]), 3, axis=0))
  want = backend.eps(backend.params, z_t, t, emb)
  got = v_backend.eps(v_backend.params, z_t, t, emb)
  assert np.abs(np.asarray(v_model(backend.params, z_t, t, emb) - want)).max() > 0.1
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5)


def test_unsupported_prediction_type_is_a_clear_error(pipeline_dir, tmp_path):
  with pytest.raises(errors.SetupError, match="prediction_type='sample'.*epsilon"):
    sd._load_schedule(  # pylint: disable=protected-access
        _with_prediction_type(pipeline_dir, tmp_path, 'sample'), 'main')


def test_sds_gradient_flows_through_the_vae_and_matches_finite_differences(backend):
  small = backend  # An 8x8 render, resized to 64x64 -> 8x8 latents (the UNet's smallest).
  cond, uncond = (jnp.asarray(e) for e in np.split(small.embed(PROMPTS), 2))
  x0 = jax.random.uniform(jax.random.PRNGKey(0), (1, 8, 8, 3), minval=0.2, maxval=0.8)
  key = jax.random.PRNGKey(7)
  kwargs = dict(omega=100.0, weighting='sigma2', t_range=(0.02, 0.98))

  def loss(backend_, x):
    return sds.sds_loss(backend_, small.params, x, cond, uncond, key, **kwargs)[0]

  grad_x = jax.grad(lambda x: loss(small, x))(x0)
  # d loss / d z = w(t) (eps_hat - eps) at z0, from the same key through an identity encoder.
  z0 = small.encode(small.params, x0)
  latent = dataclasses.replace(small)
  latent.encode = lambda params, z: z
  grad_z = jax.grad(lambda z: loss(latent, z))(z0)
  assert float(jnp.abs(grad_x).max()) > 0
  assert float(jnp.abs(grad_z).max()) > 0

  def surrogate(x):  # <d loss / dz at x0, encode(x)>: its gradient at x0 is grad_x.
    return float(jnp.sum(grad_z * small.encode(small.params, x)))

  for i in range(3):
    d = jax.random.normal(jax.random.PRNGKey(100 + i), x0.shape)
    h = 1e-3  # The random VAE is far from linear at 1e-2 (FD off by 1%); f32 noise is ~1e-4.
    fd = (surrogate(x0 + h * d) - surrogate(x0 - h * d)) / (2 * h)
    analytic = float(jnp.sum(grad_x * d))
    assert abs(fd - analytic) <= 5e-3 * abs(analytic) + 1e-4, (fd, analytic)


def test_missing_model_is_a_setup_error_naming_the_path(tmp_path):
  missing = tmp_path / 'nowhere' / 'sd21'
  with pytest.raises(errors.SetupError, match=f'no directory {missing}'):
    sd.load(str(missing))
  incomplete = tmp_path / 'half'
  (incomplete / 'unet').mkdir(parents=True)
  with pytest.raises(errors.SetupError, match='lacks tokenizer/, text_encoder/, vae/, scheduler/'):
    sd.load(str(incomplete))


def _read_scalar_tags(event_file):
  """Tags of the scalar summaries in a TFRecord event file (tensorboardX's own proto)."""
  from tensorboardX.proto import event_pb2
  tags = set()
  with open(event_file, 'rb') as f:
    while header := f.read(12):
      (length,) = struct.unpack('<Q', header[:8])
      event = event_pb2.Event.FromString(f.read(length))
      f.read(4)
      tags.update(v.tag for v in event.summary.value if v.HasField('simple_value'))
  return tags


def _run_train(workdir, model, *extra):
  cmd = [sys.executable, 'run_train.py', '--config=configs/hamburger.py', f'--workdir={workdir}',
         f'--config.guidance.model={model}', '--config.num_steps=3', '--config.render.resolution=32',
         *extra]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_run_train_hamburger_with_the_tiny_pipeline(pipeline_dir, tmp_path):
  workdir = tmp_path / 'burger'
  proc = _run_train(workdir, pipeline_dir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  metrics = json.loads((workdir / 'metrics.json').read_text())
  assert metrics['steps'] == 3

  config = ml_collections.ConfigDict(json.loads((workdir / 'config.json').read_text()))
  from configs import hamburger
  expected = hamburger.get_config()
  expected.guidance.model, expected.num_steps, expected.render.resolution = pipeline_dir, 3, 32
  assert config.to_dict() == json.loads(expected.to_json_best_effort())

  model = train.build_model(config, sd.from_config(config))
  state = runner.restore_or_init(runner.checkpoint_manager(str(workdir), config), model,
                                 jax.random.PRNGKey(99))
  assert int(state.step) == 3
  assert train.params_digest(state.params) == metrics['params_digest']

  (event_file,) = (workdir / 'tensorboard').glob('events.out.tfevents.*')
  assert _read_scalar_tags(event_file) >= {'loss', 'loss_sds', 'sds_grad_norm', 'lr', 't'}


def test_run_train_with_a_missing_model_exits_2_without_traceback(tmp_path):
  proc = _run_train(tmp_path / 'work', tmp_path / 'no' / 'such' / 'model')
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  assert f'no directory {tmp_path}/no/such/model' in proc.stderr
  assert 'huggingface-cli download' in proc.stderr
