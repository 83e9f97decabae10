"""Turntable renders against closed forms: depth of an off-centre sphere, Lambertian relighting;
the videos decode with the frames written; the light spec; the contact sheet's layout."""
import imageio.v2 as imageio
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import pictures, render, turntable
from dreamfusion_jax.toy import scenes
from dreamfusion_jax.errors import SetupError

CHUNK = 1024
AMBIENT, DIFFUSE = render.RenderSettings().ambient, render.RenderSettings().diffuse


def white(directions):
  return jnp.ones_like(directions)


def sphere_renderer(radius, center=(0.0, 0.0, 0.0), color=(0.5, 0.5, 0.5)):
  """pictures.make_camera_fn of an analytic sphere: what turntable.render_frames takes."""
  scene = scenes.union(scenes.sphere(radius, center=center, color=color))
  subject = pictures.field_subject(scenes.scene_field(scene), white, render.RenderSettings())
  return pictures.make_camera_fn(subject, CHUNK)


def ray_sphere(camera, size, radius, center):
  """Closed form: distance to the sphere along each pixel's ray, and the ray's closest approach
  to the centre (a margin from the silhouette). Returns (H, W) each; inf where the ray misses."""
  origins, directions = (np.asarray(a, np.float64) for a in camera_lib.generate_rays(
      camera, size, size))
  oc = origins - np.asarray(center)
  b = np.sum(oc * directions, axis=-1)
  closest = np.sqrt(np.maximum(np.sum(oc * oc, axis=-1) - b ** 2, 0.0))
  disc = b ** 2 - (np.sum(oc * oc, axis=-1) - radius ** 2)
  t = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
  return t, closest, origins, directions


def test_depth_frames_are_the_analytic_depth():
  radius, center, size = 0.3, (0.25, 0.1, 0.05), 32
  cams = turntable.orbit(4, 30.0, 1.3, 1.0)
  renders = list(turntable.render_frames(sphere_renderer(radius, center), cams, size,
                                         turntable.parse_light('camera')))
  errors = []
  for cam, out in zip(cams, renders):
    depth, closest, _, _ = ray_sphere(cam, size, radius, center)
    inside, outside = closest < 0.9 * radius, closest > 1.1 * radius
    assert inside.sum() > 50 and outside.sum() > 50
    errors.append(np.abs(out['depth'][inside] - depth[inside]))
    assert np.all(out['acc'][inside] > 0.999) and np.all(out['acc'][outside] < 1e-3)
  errors = np.concatenate(errors)
  print(f'depth error over {errors.size} pixels: mean {errors.mean():.4f}, max {errors.max():.4f}')
  # The rendered surface lies ~0.005 inside the zero set (scenes.default_surface_log_density).
  assert errors.max() < 0.01


@pytest.mark.filterwarnings('ignore:os.fork')  # The reader starts ffmpeg (fork + exec).
def test_videos_decode_with_the_frames_written(tmp_path):
  size, count = 32, 5
  cams = turntable.orbit(count, 30.0, 1.3, 1.0)
  renders = turntable.render_frames(sphere_renderer(0.3, color=(0.9, 0.5, 0.1)), cams, size,
                                    turntable.parse_light('camera'))
  frames = [turntable.kind_images(out, *turntable.depth_range(1.3, 1.4, 0.05))
            for out in renders]
  paths = turntable.write_videos(iter(frames), str(tmp_path), fps=30)
  assert sorted(paths) == sorted(turntable.VIDEOS)
  for kind, path in paths.items():
    reader = imageio.get_reader(path, format='FFMPEG')
    assert reader.get_meta_data()['fps'] == 30
    decoded = np.stack([frame for frame in reader.iter_data()])
    reader.close()
    assert decoded.shape == (count, size, size, 3), kind
    # H.264 is lossy: the frames come back close, not equal.
    error = np.abs(decoded.astype(float) - np.stack([f[kind] for f in frames])).mean()
    assert error < 6.0, (kind, error)


def lambert_truth(camera, size, radius, albedo, light_dir):
  """Closed-form c = albedo (ambient + diffuse max(0, n.l)) on a centred sphere [P Eq. 7]."""
  depth, closest, origins, directions = ray_sphere(camera, size, radius, (0.0, 0.0, 0.0))
  depth = np.where(np.isfinite(depth), depth, 0.0)  # Misses: any point (masked out below).
  normals = (origins + directions * depth[..., None]) / radius
  lit = AMBIENT + DIFFUSE * np.maximum(0.0, normals @ np.asarray(light_dir))
  return lit[..., None] * np.asarray(albedo), lit, normals, closest < 0.9 * radius


def test_relit_lambertian_sphere_matches_the_closed_form():
  radius, albedo, size = 0.4, (0.8, 0.6, 0.4), 48
  cam = camera_lib.camera_from_angles(0.0, 90.0, 1.3, 1.0)  # From +y: +x and -x side by side.
  out = next(turntable.render_frames(sphere_renderer(radius, color=albedo), [cam], size,
                                     turntable.parse_light('world:1,0,0')))
  shaded, lit, normals, inside = lambert_truth(cam, size, radius, albedo, (1.0, 0.0, 0.0))
  err_shaded = np.abs(out['shaded'][inside] - shaded[inside])
  err_textureless = np.abs(out['textureless'][inside] - lit[inside, None])
  print(f'shading error: shaded {err_shaded.max():.4f}, textureless {err_textureless.max():.4f}')
  assert err_shaded.max() < 0.02 and err_textureless.max() < 0.02
  front, back = inside & (normals[..., 0] > 0.5), inside & (normals[..., 0] < -0.5)
  assert out['textureless'][front].min() > AMBIENT + 0.5 * DIFFUSE - 0.02  # Lit on +x ...
  np.testing.assert_allclose(out['textureless'][back], AMBIENT, atol=0.01)  # ... ambient on -x.
  np.testing.assert_allclose(out['albedo'][inside], np.broadcast_to(albedo, (inside.sum(), 3)),
                             atol=0.01)


def test_camera_light_turns_with_the_camera_world_light_does_not():
  render_view, size = sphere_renderer(0.4), 24
  cams = turntable.orbit(2, 20.0, 1.3, 1.0)  # Azimuths 0 and 180.
  for spec, same in (('camera:0,0,1', True), ('camera', True), ('world:1,0,0', False)):
    a, b = (out['textureless'] for out in turntable.render_frames(
        render_view, cams, size, turntable.parse_light(spec)))
    assert np.allclose(a, b, atol=2e-3) == same, spec


@pytest.mark.parametrize('spec,frame,direction', [
    ('camera', 'camera', None), ('camera:0,1,1', 'camera', (0.0, 1.0, 1.0)),
    ('world:1,0,0', 'world', (1.0, 0.0, 0.0)), (' world:-1,0.5,2 ', 'world', (-1.0, 0.5, 2.0))])
def test_parse_light(spec, frame, direction):
  assert turntable.parse_light(spec) == turntable.Light(frame, direction)


@pytest.mark.parametrize('spec', ['sun', 'world', 'world:1,0', 'camera:0,0,0', 'world:a,b,c',
                                  'world:nan,0,1'])
def test_parse_light_rejects(spec):
  with pytest.raises(SetupError, match='--light'):
    turntable.parse_light(spec)


def test_contact_sheet_places_every_tile_under_its_labels():
  size, columns = 20, 8
  colors = np.random.default_rng(0).integers(0, 200, size=(columns, len(turntable.VIDEOS), 3))
  views_ = [{k: np.full((size, size, 3), colors[c, r], np.uint8)
             for r, k in enumerate(turntable.VIDEOS)} for c in range(columns)]
  labels = [f'{45 * c}°' for c in range(columns)]
  sheet = turntable.contact_sheet(views_, labels)
  top = sheet.shape[0] - len(turntable.VIDEOS) * size
  left = sheet.shape[1] - columns * size
  assert top > 0 and left > 0 and sheet.dtype == np.uint8
  for c in range(columns):
    for r in range(len(turntable.VIDEOS)):
      tile = sheet[top + r * size:top + (r + 1) * size, left + c * size:left + (c + 1) * size]
      assert np.all(tile == colors[c, r])
  # Labels are drawn: dark pixels above every column and left of every row.
  for c in range(columns):
    assert sheet[:top, left + c * size:left + (c + 1) * size].min() < 128
  for r in range(len(turntable.VIDEOS)):
    assert sheet[top + r * size:top + (r + 1) * size, :left].min() < 128
