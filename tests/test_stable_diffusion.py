"""The Stable Diffusion backend against diffusers' and transformers' PyTorch models on the same weights.

A tiny random pipeline of SD 2.1-base's architecture (tests/random_sd.py) is written with
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

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import hamburger
from dreamfusion_jax import checkpoints, defaults, errors, sds, train
from dreamfusion_jax.guidance import stable_diffusion as sd
from dreamfusion_jax.guidance import random_sd
from tests import helpers

torch = pytest.importorskip('torch')

PROMPTS = ['a DSLR photo of a delicious hamburger, front view', '']
RESOLUTION = 64  # VAE input size of the tiny pipeline (8x8 latents).


@pytest.fixture(scope='module')
def pipeline_dir(tmp_path_factory):
  return random_sd.write_pipeline(str(tmp_path_factory.mktemp('sd') / 'tiny'))


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


@pytest.fixture(scope='module')
def cfg_case(backend, torch_models):
  """One CFG case from the prompt strings, with PyTorch's two UNet calls, computed once.

  Returns a dict: z_t (2, 4, 8, 8) and t (2,) numpy; cond, uncond (2, 77, 32) our embeddings of
  PROMPTS repeated per sample; torch_emb (2, 77, 32) PyTorch's [cond, uncond] embeddings;
  eps_c, eps_u (2, 4, 8, 8) diffusers' PyTorch UNet on the same weights.
  """
  cond, uncond = np.split(backend.embed(PROMPTS), 2)
  z_t = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
  t = np.array([20, 700], np.int32)
  emb = torch_embed(torch_models, PROMPTS)
  with torch.no_grad():
    unet = torch_models['unet']
    zt, tt = torch.from_numpy(z_t), torch.from_numpy(t).long()
    eps_c = unet(zt, tt, encoder_hidden_states=emb[:1].repeat(2, 1, 1)).sample.numpy()
    eps_u = unet(zt, tt, encoder_hidden_states=emb[1:].repeat(2, 1, 1)).sample.numpy()
  return dict(z_t=z_t, t=t, cond=np.repeat(cond, 2, axis=0), uncond=np.repeat(uncond, 2, axis=0),
              torch_emb=emb.numpy(), eps_c=eps_c, eps_u=eps_u)


def stacked_inputs(case):
  """The [uncond, cond] batch of one eps call: z_t (4, 4, 8, 8), t (4,), emb (4, 77, 32)."""
  return (jnp.asarray(np.concatenate([case['z_t'], case['z_t']])),
          jnp.asarray(np.concatenate([case['t'], case['t']])),
          jnp.asarray(np.concatenate([case['uncond'], case['cond']])))


def test_text_embeddings_and_each_unet_call_match_pytorch(backend, cfg_case):
  np.testing.assert_allclose(cfg_case['cond'][0], cfg_case['torch_emb'][0], atol=1e-5)
  np.testing.assert_allclose(cfg_case['uncond'][0], cfg_case['torch_emb'][1], atol=1e-5)
  eps_c, eps_u = cfg_case['eps_c'], cfg_case['eps_u']
  assert np.abs(eps_c - eps_u).max() > 1e-3  # The prompt matters, so CFG is exercised.
  # Each UNet call agrees to float32 rounding: 4e-6 measured, as PyTorch's float32 against its
  # float64. 2e-5 leaves 5x; flax's fast variance (see sd.as_trained) gave 8e-5 here.
  both = backend.eps(backend.params, *stacked_inputs(cfg_case))
  np.testing.assert_allclose(np.asarray(both), np.concatenate([eps_u, eps_c]), atol=2e-5)


@pytest.mark.parametrize('omega, atol', [
    (0.0, 1e-4),  # eps_hat = eps_c: the 1e-4 on eps_hat itself (1e-6 measured).
    (1.0, 1e-4),  # 2 eps_c - eps_u: at most 3 x 2e-5 of float32 rounding (4e-6 measured).
    # The paper's guidance weight. (1 + omega) eps_c - omega eps_u amplifies each call's float32
    # rounding by up to 1 + 2 omega = 201, so 1e-4 on eps_hat cannot be promised for two float32
    # implementations at omega = 100; the bound scales with it (4e-4 measured).
    (100.0, 1e-4 * (1 + 2 * 100.0)),
])
def test_eps_hat_from_prompt_strings_matches_pytorch(backend, cfg_case, omega, atol):
  ours = sds.guided_eps(backend, backend.params, jnp.asarray(cfg_case['z_t']),
                        jnp.asarray(cfg_case['t']), jnp.asarray(cfg_case['cond']),
                        jnp.asarray(cfg_case['uncond']), omega)
  # eps_hat of the paper's Eq. (CFG) [P §2], written out on PyTorch's two UNet calls.
  theirs = (1 + omega) * cfg_case['eps_c'] - omega * cfg_case['eps_u']
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=atol)


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


# bfloat16 keeps 8 significant bits: epsilon 2^-7 = 7.8e-3. Activations are rounded at every layer
# and the errors add up through the network, so the outputs carry a few epsilons of their scale:
# measured on the tiny pipeline over three random draws, max|bf16 - f32| / max|f32| was 2.2-4.4
# epsilons (eps 3.3-4.4, encode 2.2-2.6). 10 epsilons leaves 2x; a wrong cast is O(1) (128 eps).
BF16_RTOL_OF_MAX = 10 * 2.0 ** -7


def test_bfloat16_pipeline_is_close_to_float32(backend, pipeline_dir, cfg_case):
  b16 = sd.load(pipeline_dir, dtype='bfloat16', resolution=RESOLUTION)
  assert b16.dtype == jnp.bfloat16 and b16.unet.dtype == jnp.bfloat16
  dtypes = {str(p.dtype) for p in jax.tree.leaves(b16.params)}
  assert dtypes == {'bfloat16'}, dtypes  # UNet and VAE encoder weights, nothing left in float32.
  assert len(jax.tree.leaves(b16.params['unet'])) == len(jax.tree.leaves(backend.params['unet']))

  inputs = stacked_inputs(cfg_case)
  want = np.asarray(backend.eps(backend.params, *inputs))
  got = jax.jit(b16.eps)(b16.params, *inputs)  # jit: one compile, cheaper than eager bfloat16.
  assert got.dtype == jnp.float32  # eps leaves the backend in float32 whatever the weights.
  err = np.abs(np.asarray(got) - want).max()
  assert 0 < err <= BF16_RTOL_OF_MAX * np.abs(want).max(), (err, np.abs(want).max())

  x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32))
  want = np.asarray(backend.encode(backend.params, x))
  got = jax.jit(b16.encode)(b16.params, x)
  assert got.dtype == jnp.float32
  err = np.abs(np.asarray(got) - want).max()
  assert 0 < err <= BF16_RTOL_OF_MAX * np.abs(want).max(), (err, np.abs(want).max())


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
  keys = jax.random.PRNGKey(7)[None]  # One view, one key.
  kwargs = dict(omega=100.0, weighting='sigma2', t_range=(0.02, 0.98))

  def loss(backend_, x):
    return sds.sds_loss(backend_, small.params, x, cond, uncond, keys, **kwargs)[0]

  # Compiled: op by op this test took 59 s, compiled 39 s.
  grad_x = jax.jit(jax.grad(lambda x: loss(small, x)))(x0)
  # d loss / d z = w(t) (eps_hat - eps) at z0, from the same key through an identity encoder.
  z0 = small.encode(small.params, x0)
  latent = dataclasses.replace(small)
  latent.encode = lambda params, z: z
  grad_z = jax.jit(jax.grad(lambda z: loss(latent, z)))(z0)
  assert float(jnp.abs(grad_x).max()) > 0
  assert float(jnp.abs(grad_z).max()) > 0

  @jax.jit
  def surrogate(x):  # <d loss / dz at x0, encode(x)>: its gradient at x0 is grad_x.
    return jnp.sum(grad_z * small.encode(small.params, x))

  for i in range(3):
    d = jax.random.normal(jax.random.PRNGKey(100 + i), x0.shape)
    h = 1e-3  # The random VAE is far from linear at 1e-2 (FD off by 1%); f32 noise is ~1e-4.
    fd = (float(surrogate(x0 + h * d)) - float(surrogate(x0 - h * d))) / (2 * h)
    analytic = float(jnp.sum(grad_x * d))
    assert abs(fd - analytic) <= 5e-3 * abs(analytic) + 1e-4, (fd, analytic)


def test_provenance_names_the_directory_and_hashes_each_weight_file_it_read(backend,
                                                                           pipeline_dir):
  import hashlib
  record = backend.provenance
  assert record['model'] == pipeline_dir and record['directory'] == os.path.abspath(pipeline_dir)
  assert record['revision'] is None and record['commit'] is None  # a local copy
  # The tiny pipeline has PyTorch weights only (safetensors): the files the converter read.
  files = ['text_encoder/model.safetensors', 'unet/diffusion_pytorch_model.safetensors',
           'vae/diffusion_pytorch_model.safetensors']
  assert sorted(record['sha256']) == files
  for name in files:
    with open(os.path.join(pipeline_dir, name), 'rb') as f:
      assert record['sha256'][name] == hashlib.sha256(f.read()).hexdigest()


# threestudio-project/threestudio@28d9d80 configs/dreamfusion-sd.yaml, written out again here
# (not read from configs/hamburger.py): lambda_sparsity 1, lambda_orient 10 at step 0.
TS_SPARSITY, TS_ORIENT_AT_0 = 1.0, 10.0


def small_hamburger(resolution: int):
  """hamburger.py at a test size; its weights follow the resolution (tied by reference)."""
  c = hamburger.get_config()
  c.render.resolution = resolution
  c.render.batch_size = 2
  c.render.num_samples, c.render.num_importance_samples = 8, 4
  c.field.width, c.field.num_blocks = 16, 1
  sd = c.guidance.stable_diffusion
  sd.dtype, sd.vae_resolution = 'float32', 64  # the tiny pipeline's
  c.prompts.view_mode = 'none'  # one prompt row: the test is about reductions
  return c


def flat(tree):
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


@pytest.mark.slow  # Four gradients through the tiny VAE in one compile (about 45 s).
def test_regularizer_to_sds_gradient_ratio_is_threestudios_at_step_0(backend):
  """configs/hamburger.py's regularizer weights are threestudio's (configs/dreamfusion-sd.yaml)
  in our reduction: each term's gradient, computed here with threestudio's own reductions (means
  over the batch's pixels; SDS as 0.5 sum (z - target)^2 / batch), equals ours, so the ratio of
  the regularizers' gradient to the SDS gradient at step 0 is the one threestudio trains with."""
  config = small_hamburger(resolution=8)
  model = train.build_model(config, backend)
  params = train.init_state(model, jax.random.PRNGKey(0)).params
  frozen = train.make_frozen(model)
  views = train.draw_replica(jax.random.PRNGKey(1), 0, 0, config, num_views=2)

  no_regularizers = config.copy_and_resolve_references()
  no_regularizers.loss.opacity_weight = 0.0
  no_regularizers.schedule.orientation_start = no_regularizers.schedule.orientation_end = 0.0
  # needs_normals would skip the normals; the same renders are wanted, so keep them.
  model_sds = model._replace(config=no_regularizers)

  def ours(params, m):
    return train.loss_fn(params, m, frozen, views, 0)[0]

  def threestudio(params):
    """threestudio's dreamfusion.py / stable_diffusion_guidance.py reductions."""
    out = train.render_views(params, model, views, 0)
    acc, orientation = out['acc'], out['orientation']
    sparsity = jnp.mean(jnp.sqrt(acc ** 2 + 0.01))  # .mean() over the batch's pixels
    orient = jnp.sum(orientation) / jnp.sum(acc > 0)  # sum / (opacity > 0).sum()
    z = backend.encode(frozen.guidance_params, out['rgb'])
    t, eps = sds.draw_noise(backend.schedule, views.sds_key, z.shape, config.guidance.t_range)
    alpha, sigma = backend.schedule.alpha_sigma(t)
    z_t = alpha[:, None, None, None] * z + sigma[:, None, None, None] * eps
    cond = jnp.broadcast_to(frozen.cond_table[0], (2,) + frozen.cond_table.shape[1:])
    uncond = jnp.broadcast_to(frozen.uncond_table[0], cond.shape)
    eps_hat = sds.guided_eps(backend, frozen.guidance_params, z_t, t, cond, uncond,
                             config.guidance.scale)
    grad = (1.0 - alpha ** 2)[:, None, None, None] * (eps_hat - eps)  # w = 1 - alphas[t]
    target = jax.lax.stop_gradient(z - grad)
    loss_sds = 0.5 * jnp.sum((z - target) ** 2) / z.shape[0]  # mse(reduction='sum') / batch
    return loss_sds, TS_SPARSITY * sparsity + TS_ORIENT_AT_0 * orient

  def all_four(params):  # One compiled jacobian: four gradients for one compilation.
    return jnp.stack([ours(params, model), ours(params, model_sds), *threestudio(params)])

  jac = jax.jit(jax.jacrev(all_four))(params)
  g_all, g_sds, ts_sds, ts_reg = (flat(jax.tree.map(lambda x, i=i: x[i], jac)) for i in range(4))
  g_reg = g_all - g_sds
  assert np.linalg.norm(g_sds) > 0 and np.linalg.norm(ts_reg) > 0
  np.testing.assert_allclose(g_sds, ts_sds, rtol=1e-3, atol=1e-4 * np.abs(ts_sds).max())
  np.testing.assert_allclose(g_reg, ts_reg, rtol=1e-3, atol=1e-3 * np.abs(ts_reg).max())
  ratio, ts_ratio = (np.linalg.norm(a) / np.linalg.norm(b) for a, b in ((g_reg, g_sds),
                                                                         (ts_reg, ts_sds)))
  np.testing.assert_allclose(ratio, ts_ratio, rtol=1e-3)
  # The paper's weights (base.py) give another balance: 4x the opacity weight, 1/24 of the
  # orientation weight.
  paper, shipped = defaults.get_config(), hamburger.get_config()
  assert paper.loss.opacity_weight / shipped.loss.opacity_weight > 4
  assert shipped.schedule.orientation_start / paper.schedule.orientation_start > 24


def test_missing_model_is_a_setup_error_naming_the_path(tmp_path):
  missing = tmp_path / 'nowhere' / 'sd21'
  with pytest.raises(errors.SetupError, match=f'no directory {missing}'):
    sd.load(str(missing))
  incomplete = tmp_path / 'half'
  (incomplete / 'unet').mkdir(parents=True)
  with pytest.raises(errors.SetupError, match='lacks tokenizer/, text_encoder/, vae/, scheduler/'):
    sd.load(str(incomplete))


def _corrupt(pipeline_dir, tmp_path, file, content: bytes) -> str:
  """A complete copy of the pipeline with `file` (relative to it) overwritten by content."""
  path = tmp_path / 'corrupt'
  shutil.copytree(pipeline_dir, path)
  (path / file).write_bytes(content)
  return str(path)


@pytest.mark.parametrize('file, content', [
    ('unet/config.json', b'{"in_channels": 4, "block_out'),  # A truncated download.
    ('unet/diffusion_pytorch_model.safetensors', b'\0' * 64),
], ids=['config', 'weights'])
def test_unreadable_unet_is_a_setup_error_naming_what_and_where(pipeline_dir, tmp_path, file,
                                                                content):
  model = _corrupt(pipeline_dir, tmp_path, file, content)
  with pytest.raises(errors.SetupError) as info:
    sd.load(model, resolution=RESOLUTION)
  message = str(info.value)
  assert message.startswith('guidance.stable_diffusion.model: could not load the Stable Diffusion '
                            'UNet (looked for '
                            'unet/config.json with diffusion_flax_model.msgpack, '
                            'diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin) '
                            f'from the local directory {model}: OSError: '), message
  assert f'{model}/{file}' in message  # The loader's own first line names the file it read.
  assert 'Download it again' in message and '\n' not in message


def test_run_train_with_an_unreadable_model_exits_2_without_traceback(pipeline_dir, tmp_path):
  model = _corrupt(pipeline_dir, tmp_path, 'unet/config.json', b'{"in_channels": 4, "block_out')
  proc = _run_train(tmp_path / 'work', model)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  (error,) = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
  assert 'could not load the Stable Diffusion UNet (looked for unet/config.json' in error
  assert f'from the local directory {model}: ' in error


def test_a_path_that_is_not_a_directory_is_tried_as_a_hub_id_and_the_error_says_so(
    tmp_path, monkeypatch):
  import huggingface_hub
  monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)  # No network retries.
  # Past the short offline message (test below): the loaders' own error, as with a partial cache.
  monkeypatch.setattr(sd, '_check_offline', lambda model, revision: None)
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'models').mkdir()  # 'models/sd21base' with a typo: one '/', so also a valid hub id.
  with pytest.raises(errors.SetupError) as info:
    sd.load('models/sd21bsae')
  message = str(info.value)
  assert ("from the Hugging Face hub id 'models/sd21bsae' at revision 'main' (there is no local "
          f"directory {tmp_path}/models/sd21bsae, so it was tried as a hub id)") in message, message
  assert f'If you meant a local directory, fix the path (a relative one starts from {tmp_path})' \
      in message


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


def _run_train(workdir, model, *extra, env=None):
  return helpers.run_train(f'--config.guidance.stable_diffusion.model={model}',
                           '--config.num_steps=3',
                           '--config.render.resolution=32', *extra, workdir=workdir,
                           config='configs/hamburger.py', timeout=1200, env=env)


@pytest.mark.slow
def test_run_train_hamburger_with_the_tiny_pipeline(pipeline_dir, tmp_path):
  workdir = tmp_path / 'burger'
  # One view a step: hamburger.py's batch of 4 with its VAE at 512^2 and backward, beside the
  # rest of the suite, ran this 24 GB machine out of memory.
  proc = _run_train(workdir, pipeline_dir, '--config.render.batch_size=1')
  assert proc.returncode == 0, proc.stderr[-3000:]
  metrics = json.loads((workdir / 'metrics.json').read_text())
  assert metrics['steps'] == 3
  assert metrics['guidance_model'] == sd.load(pipeline_dir, resolution=RESOLUTION).provenance

  config = ml_collections.ConfigDict(json.loads((workdir / 'config.json').read_text()))
  expected = hamburger.get_config()
  expected.guidance.stable_diffusion.model = pipeline_dir
  expected.num_steps, expected.render.resolution = 3, 32
  expected.render.batch_size = 1
  assert config.to_dict() == json.loads(expected.to_json_best_effort())

  model = train.build_model(config, sd.from_config(config))
  state = checkpoints.restore_or_init(checkpoints.manager(str(workdir), config), model,
                                 jax.random.PRNGKey(99))
  assert int(state.step) == 3
  assert train.params_digest(state.params) == metrics['params_digest']

  (event_file,) = (workdir / 'tensorboard').glob('events.out.tfevents.*')
  assert _read_scalar_tags(event_file) >= {'loss', 'loss_sds', 'sds_grad_norm', 'lr', 't'}


def test_offline_without_a_cached_copy_is_one_short_line_and_leaves_no_workdir(tmp_path):
  """HF_HUB_OFFLINE=1 and an empty cache: one line under 200 characters that says offline mode
  is on and what to do; the run fails at set-up, so it leaves nothing behind, and the corrected
  rerun in the same workdir is not refused as another config."""
  env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf'))
  workdir = tmp_path / 'work'
  proc = _run_train(workdir, sd.MIRRORS[0], env=env)
  assert proc.returncode == 2, proc.stderr[-2000:]
  error = proc.stderr.strip()
  assert error.startswith('error: ') and '\n' not in error, error
  assert len(error) - len('error: ') < 200, error
  assert 'HF_HUB_OFFLINE=1' in error and 'local directory' in error
  assert not workdir.exists()
  os.makedirs(workdir)  # A workdir the user made stays, and stays empty.
  assert _run_train(workdir, sd.MIRRORS[0], env=env).returncode == 2
  assert os.listdir(workdir) == []


def test_run_train_with_a_missing_model_exits_2_without_traceback(tmp_path):
  proc = _run_train(tmp_path / 'work', tmp_path / 'no' / 'such' / 'model')
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  assert f'no directory {tmp_path}/no/such/model' in proc.stderr
  assert 'huggingface-cli download' in proc.stderr
