"""Analytic scenes: signed-distance objects with known answers (design.md §3, §5).

A scene is a small immutable description (NamedTuples of Python floats and tuples, so hashable
and usable as a static jit argument): a union of primitives, each with a colour, and optionally
one *mark*, a patch of the surface on the object's front (+x) side painted a distinct colour.
`scene_field` turns it into a field with the project's interface
    field_fn(means (..., 3), variance) -> (raw_density (...), albedo (..., 3)),
so the project's own renderer (render.py) draws ground-truth images of it; `LIBRARY` holds the
captioned objects of the offline world (the empirical prior of design.md §5).

Conventions (camera.py): +z is up, the object's front faces +x, lengths in world units (cameras
sit at distance 1-1.5; the NeRF's bounding sphere has radius 1.4). SDFs are negative inside.

Primitives are local shapes centred at the origin, axis +z, then rotated (Euler angles, degrees)
and translated:
  sphere    size = (radius,)
  box       size = (half_x, half_y, half_z); rounding r rounds edges and corners, keeping the
            outer half-extents
  cylinder  size = (radius, half_height), capped, axis +z; rounding rounds both rims, keeping
            the outer radius and height (rounding = radius, half_height >= radius: a capsule)
  cone      size = (radius_bottom, radius_top, half_height), a capped cone (frustum; radius_top
            = 0 is a pointed cone) along +z from z = -half_height (bottom) to +half_height;
            rounding rounds its rims keeping the base and top planes and the slanted side (the
            shape is the inset frustum grown by the rounding radius; a pointed apex becomes a
            sphere of radius `rounding` inside the tip, so the tip sits lower)
All SDFs are exact (the Euclidean signed distance) inside and outside; a union (min) of exact
SDFs is exact outside and a bound inside, as usual.
"""
import math
from typing import Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax.field import FieldFn

Vec3 = Tuple[float, float, float]

PRIMITIVES = ('sphere', 'box', 'cylinder', 'cone')

# Default sharpness k of raw_density = k (-sdf) + b, per world unit. The density transition is
# ~1/k = 0.003 wide, a sixth of a pixel of a 64 px render at distance 1.25 (0.02 units per
# pixel), so silhouettes are crisp, and with the default b (default_surface_log_density) the
# rendered surface lies within 0.005 of the SDF's zero set (head-on depth and silhouette), which
# k = 50-100 cannot give (0.012 at k = 100, and 0.04-0.06 with b = 0). The field stays smooth
# (C-infinity away from the SDFs' own edges) for gradients, and 64 stratified + 32 importance
# samples resolve it (render.RenderSettings' defaults); without importance samples the depth is
# only as fine as the sample spacing, as for any sharp field.
DEFAULT_SHARPNESS = 300.0

# Nominal radius of curvature of silhouettes, used only to place the default surface offset.
_NOMINAL_RADIUS = 0.3
_EULER_GAMMA = 0.5772156649015329
# Below this squared length a vector's norm is floored (finite value and zero gradient at 0).
_EPS = 1e-12


def default_surface_log_density(sharpness: float, radius: float = _NOMINAL_RADIUS) -> float:
  """The raw density b at the SDF's zero set that puts the rendered surface on it.

  With raw = k (-sdf) + b the density grows like exp(k s) with depth s, so volume rendering does
  not stop exactly at sdf = 0:
    * a head-on ray terminates on average (ln k - gamma - b) / k inside the surface (the optical
      depth exp(k s + b) / k is Exp(1)-distributed where the ray stops; gamma = 0.577);
    * a grazing ray passing at signed distance d outside a silhouette of curvature radius R has
      optical depth exp(b - k d) sqrt(2 pi R / k), so the acc = 0.5 silhouette sits at
      d = (b - c) / k with c = ln(ln 2) + ln(k / (2 pi R)) / 2.
  b = 0 (the literal raw = k (-sdf)) puts the rendered surface (ln k - gamma) / k inside (0.017
  at k = 300, 0.06 at k = 60). This b = (ln k - gamma + c) / 2 balances the two: each bias is then
  (ln k - gamma - c) / (2k) for R = 0.3: 0.005 at k = 300, 0.007 at 200, 0.012 at 100 (b = 3.6,
  3.3, 2.8). Both formulas are checked against the renderer in tests/test_scenes.py.

  Args:
    sharpness: k, per world unit.
    radius: curvature radius R the silhouette term assumes.

  Returns:
    b, a Python float.
  """
  k = float(sharpness)
  c = math.log(math.log(2.0)) + 0.5 * math.log(k / (2.0 * math.pi * radius))
  return 0.5 * (math.log(k) - _EULER_GAMMA + c)


class Primitive(NamedTuple):
  """One coloured shape; see the module docstring for `kind` and `size`."""
  kind: str
  size: Tuple[float, ...]
  center: Vec3 = (0.0, 0.0, 0.0)
  color: Vec3 = (0.5, 0.5, 0.5)
  rounding: float = 0.0
  rotation_deg: Vec3 = (0.0, 0.0, 0.0)  # Euler angles about x, then y, then z (world axes).


class Mark(NamedTuple):
  """A painted patch: points with x > x_min, |y - center_yz[0]| < half_size_yz[0] and
  |z - center_yz[1]| < half_size_yz[1] (world coordinates) take `color`, optionally only where
  primitive `primitive` (an index into Scene.primitives) is the nearest one (-1: any)."""
  color: Vec3
  x_min: float
  center_yz: Tuple[float, float]
  half_size_yz: Tuple[float, float]
  primitive: int = -1


class Scene(NamedTuple):
  """A union of primitives, with at most one mark."""
  primitives: Tuple[Primitive, ...]
  mark: Optional[Mark] = None


# ----------------------------------------------------------------------------- constructors


def _vec3(v, name) -> Vec3:
  v = tuple(float(x) for x in v)
  if len(v) != 3 or not all(math.isfinite(x) for x in v):
    raise ValueError(f'{name} must be 3 finite numbers, got {v!r}')
  return v


def _color(c) -> Vec3:
  c = _vec3(c, 'color')
  if not all(0.0 <= x <= 1.0 for x in c):
    raise ValueError(f'color components must lie in [0, 1], got {c!r}')
  return c


def _positive(name, *values):
  for v in values:
    if not v > 0.0:
      raise ValueError(f'{name} must be > 0, got {v!r}')


def _rounding(rounding, limit, what):
  rounding = float(rounding)
  if not 0.0 <= rounding <= limit:
    raise ValueError(f'rounding must lie in [0, {limit:g}] ({what}), got {rounding!r}')
  return rounding


def sphere(radius, center=(0.0, 0.0, 0.0), color=(0.5, 0.5, 0.5)) -> Primitive:
  _positive('radius', radius)
  return Primitive('sphere', (float(radius),), _vec3(center, 'center'), _color(color))


def box(half_extents, center=(0.0, 0.0, 0.0), color=(0.5, 0.5, 0.5), rounding=0.0,
        rotation_deg=(0.0, 0.0, 0.0)) -> Primitive:
  """Box of half-extents (hx, hy, hz); rounding <= min half-extent keeps the outer size."""
  h = _vec3(half_extents, 'half_extents')
  _positive('half_extents', *h)
  r = _rounding(rounding, min(h), 'at most the smallest half-extent')
  return Primitive('box', h, _vec3(center, 'center'), _color(color), r,
                   _vec3(rotation_deg, 'rotation_deg'))


def cylinder(radius, half_height, center=(0.0, 0.0, 0.0), color=(0.5, 0.5, 0.5), rounding=0.0,
             rotation_deg=(0.0, 0.0, 0.0)) -> Primitive:
  """Capped cylinder along the local +z axis; rounding <= min(radius, half_height)."""
  _positive('radius and half_height', radius, half_height)
  r = _rounding(rounding, min(radius, half_height), 'at most min(radius, half_height)')
  return Primitive('cylinder', (float(radius), float(half_height)), _vec3(center, 'center'),
                   _color(color), r, _vec3(rotation_deg, 'rotation_deg'))


def cone(radius_bottom, radius_top, half_height, center=(0.0, 0.0, 0.0), color=(0.5, 0.5, 0.5),
         rounding=0.0, rotation_deg=(0.0, 0.0, 0.0)) -> Primitive:
  """Capped cone (frustum) along local +z, bottom radius at z = -half_height.

  radius_top may be 0 (pointed) and may exceed radius_bottom (an upside-down cone).
  rounding must be small enough that the inset frustum exists (checked).
  """
  _positive('radius_bottom and half_height', radius_bottom, half_height)
  if not radius_top >= 0.0:
    raise ValueError(f'radius_top must be >= 0, got {radius_top!r}')
  size = (float(radius_bottom), float(radius_top), float(half_height))
  r = _rounding(rounding, half_height, 'at most half_height')
  if r > 0.0:
    _inset_cone(*size, r)  # Raises if the rounding is too large.
  return Primitive('cone', size, _vec3(center, 'center'), _color(color), r,
                   _vec3(rotation_deg, 'rotation_deg'))


def translate(shape, offset):
  """A Primitive or a Scene (primitives and mark) moved by offset (3,)."""
  o = _vec3(offset, 'offset')
  if isinstance(shape, Primitive):
    return shape._replace(center=tuple(c + d for c, d in zip(shape.center, o)))
  if isinstance(shape, Scene):
    mark = shape.mark
    if mark is not None:
      mark = mark._replace(x_min=mark.x_min + o[0],
                           center_yz=(mark.center_yz[0] + o[1], mark.center_yz[1] + o[2]))
    return Scene(tuple(translate(p, o) for p in shape.primitives), mark)
  raise TypeError(f'translate takes a Primitive or a Scene, got {type(shape).__name__}')


def union(*parts, mark: Optional[Mark] = None) -> Scene:
  """A Scene of the given Primitives and Scenes' primitives (in order), with an optional mark.

  A Scene part's own mark is kept (its primitive index shifted) unless `mark` is given; more
  than one mark is an error. Mark.primitive indexes the union's primitives.
  """
  prims, marks = [], []
  for part in parts:
    if isinstance(part, Primitive):
      prims.append(part)
    elif isinstance(part, Scene):
      if part.mark is not None:
        idx = part.mark.primitive
        marks.append(part.mark._replace(primitive=idx + len(prims) if idx >= 0 else -1))
      prims.extend(part.primitives)
    else:
      raise TypeError(f'union takes Primitives and Scenes, got {type(part).__name__}')
  if mark is not None:
    marks = [mark]
  if len(marks) > 1:
    raise ValueError('a scene has at most one mark')
  if not prims:
    raise ValueError('a scene needs at least one primitive')
  mark = marks[0] if marks else None
  if mark is not None:
    if not -1 <= mark.primitive < len(prims):
      raise ValueError(f'mark.primitive {mark.primitive} is not an index of the '
                       f'{len(prims)} primitives (or -1)')
    mark = mark._replace(color=_color(mark.color))
  for p in prims:
    if p.kind not in PRIMITIVES:
      raise ValueError(f'unknown primitive kind {p.kind!r}; known: {PRIMITIVES}')
  return Scene(tuple(prims), mark)


# ----------------------------------------------------------------------------- SDFs


def _norm(v, axis=-1):
  """|v| along axis with a finite (zero) gradient at v = 0."""
  return jnp.sqrt(jnp.maximum(jnp.sum(v * v, axis=axis), _EPS * _EPS))


def sdf_sphere(p, radius):
  """Exact SDF of a centred sphere. Args: p (..., 3). Returns (...)."""
  return _norm(p) - radius


def sdf_box(p, half_extents, rounding=0.0):
  """Exact SDF of a centred axis-aligned box, edges rounded by `rounding` (outer size kept).

  Args: p (..., 3); half_extents (3,); rounding <= min(half_extents). Returns (...).
  """
  q = jnp.abs(p) - jnp.asarray(half_extents, p.dtype) + rounding
  outside = _norm(jnp.maximum(q, 0.0))
  inside = jnp.minimum(jnp.max(q, axis=-1), 0.0)
  return outside + inside - rounding


def sdf_cylinder(p, radius, half_height, rounding=0.0):
  """Exact SDF of a capped cylinder along +z, |z| <= half_height, rims rounded.

  Args: p (..., 3). Returns (...).
  """
  d = jnp.stack([_norm(p[..., :2]) - radius + rounding,
                 jnp.abs(p[..., 2]) - half_height + rounding], axis=-1)
  return jnp.minimum(jnp.max(d, axis=-1), 0.0) + _norm(jnp.maximum(d, 0.0)) - rounding


def _sdf_frustum(p, r1, r2, h):
  """Exact SDF of a frustum along +z: radius r1 at z = -h, r2 >= 0 at z = +h.

  Inside, the distance to a convex solid of revolution is that to the nearest of its profile's
  lines (caps, side), max of their signed distances, which is smooth on the surface; outside it
  is the distance to the nearest profile segment (Quilez' capped cone).
  """
  rho = _norm(p[..., :2])
  z = p[..., 2]
  length = math.hypot(2.0 * h, r1 - r2)
  side = ((rho - r1) * 2.0 * h + (z + h) * (r1 - r2)) / length
  inside = jnp.maximum(jnp.maximum(z - h, -z - h), side)
  # Outside: distance to the cap segment of the nearer cap, and to the side segment.
  cap_r = jnp.where(z < 0.0, r1, r2)
  ca = jnp.stack([rho - jnp.minimum(rho, cap_r), jnp.abs(z) - h], axis=-1)
  # Side segment: top end (r2, h) minus s k2, s in [0, 1], with k2 = (r2 - r1, 2h).
  k2 = np.array([r2 - r1, 2.0 * h])
  rel = jnp.stack([rho - r2, z - h], axis=-1)  # q - (r2, h)
  t = jnp.clip(-jnp.sum(rel * k2, axis=-1) / float(k2 @ k2), 0.0, 1.0)
  cb = rel + t[..., None] * k2
  dist2 = jnp.minimum(jnp.sum(ca * ca, axis=-1), jnp.sum(cb * cb, axis=-1))
  outside = jnp.sqrt(jnp.maximum(dist2, _EPS * _EPS))
  return jnp.where(inside <= 0.0, inside, outside)


def _inset_cone(r1, r2, h, r):
  """The frustum whose growth by a ball of radius r is the rounded cone (r1, r2, h, r).

  Returns (z_shift, r1', r2', h'): the inset frustum spans local z in z_shift +- h'. Raises if
  r is too large for the cone.
  """
  length = math.hypot(2.0 * h, r1 - r2)
  shrink = r * length / (2.0 * h)  # Radial inset of the slanted side.

  def rho(z):  # Inset side's radius at height z.
    return 0.5 * (r1 + r2) + (r2 - r1) * z / (2.0 * h) - shrink

  lo, hi = -(h - r), h - r
  if (rho(lo) < 0.0 and rho(hi) < 0.0) or hi <= lo:
    raise ValueError(f'rounding {r} is too large for the cone {(r1, r2, h)}')
  # A radius that reaches 0 inside [lo, hi] truncates the inset frustum at its apex.
  if rho(hi) < 0.0 or rho(lo) < 0.0:
    z0 = (shrink - 0.5 * (r1 + r2)) * 2.0 * h / (r2 - r1)
    lo, hi = (lo, z0) if rho(hi) < 0.0 else (z0, hi)
  if hi - lo <= 0.0:
    raise ValueError(f'rounding {r} is too large for the cone {(r1, r2, h)}')
  return 0.5 * (lo + hi), max(rho(lo), 0.0), max(rho(hi), 0.0), 0.5 * (hi - lo)


def sdf_cone(p, radius_bottom, radius_top, half_height, rounding=0.0):
  """Exact SDF of a capped cone along +z (see `cone`), rims rounded by `rounding`.

  Args: p (..., 3). Returns (...).
  """
  if rounding <= 0.0:
    return _sdf_frustum(p, radius_bottom, radius_top, half_height)
  z_shift, r1, r2, h = _inset_cone(radius_bottom, radius_top, half_height, rounding)
  return _sdf_frustum(p - jnp.array([0.0, 0.0, z_shift], p.dtype), r1, r2, h) - rounding


def _rotation(rotation_deg) -> np.ndarray:
  """World-from-local rotation Rz Ry Rx (3, 3) of Euler angles in degrees."""
  ax, ay, az = np.deg2rad(rotation_deg)
  rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
  ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
  rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
  return rz @ ry @ rx


def primitive_sdf(prim: Primitive, means):
  """SDF of one placed primitive. Args: means (..., 3). Returns (...)."""
  p = means - jnp.asarray(prim.center, means.dtype)
  if any(prim.rotation_deg):
    # Local coordinates R^T (p - c), written for row vectors.
    p = p @ jnp.asarray(_rotation(prim.rotation_deg), means.dtype)
  if prim.kind == 'sphere':
    return sdf_sphere(p, prim.size[0])
  if prim.kind == 'box':
    return sdf_box(p, prim.size, prim.rounding)
  if prim.kind == 'cylinder':
    return sdf_cylinder(p, prim.size[0], prim.size[1], prim.rounding)
  if prim.kind == 'cone':
    return sdf_cone(p, *prim.size, rounding=prim.rounding)
  raise ValueError(f'unknown primitive kind {prim.kind!r}; known: {PRIMITIVES}')


def primitive_sdfs(scene: Scene, means):
  """Every primitive's SDF. Args: means (..., 3). Returns (P, ...)."""
  return jnp.stack([primitive_sdf(p, means) for p in scene.primitives], axis=0)


def sdf(scene: Scene, means):
  """The scene's SDF, the union (min) of its primitives'. Args: means (..., 3). Returns (...)."""
  return jnp.min(primitive_sdfs(scene, means), axis=0)


def nearest_primitive(scene: Scene, means):
  """Index of the primitive with the smallest SDF (hard argmin). Returns (...) int32."""
  return jnp.argmin(primitive_sdfs(scene, means), axis=0).astype(jnp.int32)


# ----------------------------------------------------------------------------- colour, mark


def mark_mask(scene: Scene, means):
  """Whether points lie in the scene's mark (all False without one). Returns (...) bool."""
  if scene.mark is None:
    return jnp.zeros(means.shape[:-1], bool)
  m = scene.mark
  inside = ((means[..., 0] > m.x_min)
            & (jnp.abs(means[..., 1] - m.center_yz[0]) < m.half_size_yz[0])
            & (jnp.abs(means[..., 2] - m.center_yz[1]) < m.half_size_yz[1]))
  if m.primitive >= 0:
    inside = inside & (nearest_primitive(scene, means) == m.primitive)
  return inside


def albedo(scene: Scene, means):
  """Per-point albedo: the nearest primitive's colour (a hard argmin, so colour boundaries
  between touching primitives are sharp and carry no gradient), overridden by the mark colour
  inside the mark. Args: means (..., 3). Returns (..., 3) in [0, 1].
  """
  colors = jnp.asarray([p.color for p in scene.primitives], means.dtype)  # (P, 3)
  rgb = colors[nearest_primitive(scene, means)]
  if scene.mark is not None:
    mark_rgb = jnp.asarray(scene.mark.color, means.dtype)
    rgb = jnp.where(mark_mask(scene, means)[..., None], mark_rgb, rgb)
  return rgb


def analytic_normals(scene: Scene, means):
  """Outward unit normals grad(sdf) / |grad(sdf)| (zero where the gradient vanishes).

  Args: means (..., 3). Returns (..., 3).
  """
  value, vjp = jax.vjp(lambda m: sdf(scene, m), means)
  return camera_lib.safe_normalize(vjp(jnp.ones_like(value))[0])


def scene_field(scene: Scene, sharpness: float = DEFAULT_SHARPNESS,
                surface_log_density: Optional[float] = None) -> FieldFn:
  """The scene as a field for render.py.

  raw_density = sharpness * (-sdf) + surface_log_density: density = exp(raw) is ~0 outside,
  opaque (the renderer clips raw at 15) a little inside, and -grad(raw) = sharpness grad(sdf) is
  the outward normal. The constant surface_log_density (default
  `default_surface_log_density(sharpness)`, 3.6 at the default k = 300) moves the *rendered* surface
  (head-on termination depth, acc = 0.5 silhouette) onto the SDF's zero set to ~0.005; 0.0 gives
  the literal k (-sdf), whose rendered surface sits (ln k - 0.58) / k inside (0.017 at k = 300).

  Args:
    scene: a Scene (static: closed over, never traced).
    sharpness: k > 0, per world unit.
    surface_log_density: b, the raw density on the zero set; None for the default.

  Returns:
    field_fn(means (..., 3), variance) -> (raw_density (...), albedo (..., 3)). `variance` (the
    IPE variance) is ignored: the analytic field is not band-limited.
  """
  _positive('sharpness', sharpness)
  k = float(sharpness)
  b = default_surface_log_density(k) if surface_log_density is None else float(
      surface_log_density)

  def field_fn(means, variance):
    del variance  # An analytic field has no pre-filtering.
    return k * -sdf(scene, means) + b, albedo(scene, means)

  return field_fn


# ----------------------------------------------------------------------------- the library

BUN = (0.86, 0.62, 0.32)
PATTY = (0.33, 0.17, 0.08)
LETTUCE = (0.35, 0.78, 0.22)
PICKLE = (0.45, 0.55, 0.10)
KETCHUP = (0.95, 0.05, 0.05)  # The mark: no other part of the hamburger is saturated red.
# The onion hamburger's second mark, on its left side: at least 0.5 (max channel difference) from
# every other colour of the hamburger and from the ketchup.
ONION = (0.55, 0.10, 0.70)

HAMBURGER_OFFSET = (0.1, -0.12, 0.0)


def toy_hamburger() -> Scene:
  """The default target: an off-centre, asymmetric hamburger with a ketchup mark on its front.

  A stack centred at HAMBURGER_OFFSET = (0.1, -0.12, 0) (z from -0.21 to 0.19): bottom bun
  (rounded disc r 0.28, 0.10 thick), patty (r 0.30, 0.07 thick), lettuce (r 0.32, 0.03 thick),
  top bun (rounded cone r 0.29 -> 0.17, 0.20 tall, a dome), a pickle slice (disc r 0.09) tilted
  out of the -y side (the image left in the front view), and a ketchup-red mark on the top bun's
  front: x > 0.22, |y + 0.12| < 0.15, 0.01 < z < 0.12 (local x > 0.12), on the top bun only.
  Every point lies within 0.53 of the origin.
  """
  parts = (
      cylinder(0.28, 0.05, center=(0.0, 0.0, -0.16), color=BUN, rounding=0.03),
      cylinder(0.30, 0.035, center=(0.0, 0.0, -0.075), color=PATTY, rounding=0.025),
      cylinder(0.32, 0.015, center=(0.0, 0.0, -0.025), color=LETTUCE, rounding=0.01),
      cone(0.29, 0.17, 0.10, center=(0.0, 0.0, 0.09), color=BUN, rounding=0.07),
      cylinder(0.09, 0.014, center=(-0.02, -0.30, -0.03), color=PICKLE, rounding=0.01,
               rotation_deg=(25.0, 40.0, 0.0)),
  )
  mark = Mark(KETCHUP, x_min=0.12, center_yz=(0.0, 0.065), half_size_yz=(0.15, 0.055),
              primitive=3)
  return translate(union(*parts, mark=mark), HAMBURGER_OFFSET)


def onion_hamburger() -> Scene:
  """The toy hamburger with a second mark that tells its left from its right (the Janus target).

  The toy hamburger (toy_hamburger) plus a red-onion slice (ONION, a disc r 0.10) tilted out of
  the +y side, the object's own left (prompts.py: it faces +x with +z up), mirroring the pickle on
  its right (-y). The ketchup mark stays on the front: a left-side view sees the onion, a
  right-side view the pickle, the front view the ketchup.
  """
  onion = cylinder(0.10, 0.014, center=(-0.02, 0.30, -0.03), color=ONION, rounding=0.01,
                   rotation_deg=(-25.0, 40.0, 0.0))
  return union(toy_hamburger(), translate(onion, HAMBURGER_OFFSET))


# Marks that are parts of their own colour rather than painted patches (Scene.mark), by object:
# the toy world's metrics (metrics.py) count them per view like the painted mark.
PART_MARKS: Dict[str, Dict[str, Vec3]] = {'onion hamburger': {'onion': ONION}}


def _snowman() -> Scene:
  return union(
      sphere(0.22, center=(0.0, 0.0, -0.18), color=(0.95, 0.95, 0.95)),
      sphere(0.15, center=(0.0, 0.0, 0.14), color=(0.95, 0.95, 0.95)),
      # A carrot nose pointing to the front (+x): a cone whose axis is turned from +z to +x.
      cone(0.04, 0.0, 0.08, center=(0.21, 0.0, 0.16), color=(1.0, 0.5, 0.1),
           rotation_deg=(0.0, 90.0, 0.0)),
  )


# Pale objects: low contrast against a white background (issue 24: with a white-only world and
# training background they collapsed; docs/verification.md, "Where the default fails").
MUG_WHITE = (0.92, 0.92, 0.90)
BEIGE = (0.93, 0.87, 0.68)


def _white_mug() -> Scene:
  """A near-white mug: a rounded cylinder (r 0.24, 0.48 tall), a handle on its -y side (the image
  left in the front view) and a blue mark on its front (x > 0.1, |y| < 0.12, |z - 0.02| < 0.10)."""
  return union(
      cylinder(0.24, 0.24, color=MUG_WHITE, rounding=0.04),
      box((0.04, 0.09, 0.12), center=(0.0, -0.30, 0.0), color=MUG_WHITE, rounding=0.03),
      mark=Mark((0.15, 0.35, 0.90), x_min=0.10, center_yz=(0.0, 0.02), half_size_yz=(0.12, 0.10),
                primitive=0))


def _pale_yellow_box() -> Scene:
  """A beige box (0.60 x 0.40 x 0.28) with a light-grey knob off-centre on top and a muted red
  mark on its front (x > 0.2, |y + 0.08| < 0.12, |z| < 0.07)."""
  return union(
      box((0.30, 0.20, 0.14), center=(0.0, 0.0, -0.08), color=BEIGE, rounding=0.03),
      sphere(0.12, center=(0.05, 0.05, 0.15), color=(0.85, 0.85, 0.82)),
      mark=Mark((0.85, 0.25, 0.25), x_min=0.2, center_yz=(0.0, -0.08), half_size_yz=(0.12, 0.07),
                primitive=0))


LIBRARY: Dict[str, Scene] = {
    'red ball': union(sphere(0.35, color=(0.85, 0.1, 0.1))),
    'blue cube': union(box((0.25, 0.25, 0.25), color=(0.15, 0.3, 0.9), rounding=0.03)),
    'green cylinder': union(cylinder(0.25, 0.3, color=(0.2, 0.7, 0.2), rounding=0.02)),
    'yellow cone': union(cone(0.33, 0.0, 0.3, color=(0.95, 0.85, 0.15), rounding=0.02)),
    'orange box': union(box((0.35, 0.22, 0.15), color=(0.95, 0.5, 0.1), rounding=0.03)),
    'purple capsule': union(cylinder(0.16, 0.35, color=(0.55, 0.25, 0.75), rounding=0.16)),
    'snowman': _snowman(),
    'toy hamburger': toy_hamburger(),
    'onion hamburger': onion_hamburger(),
    'white mug': _white_mug(),
    'pale yellow box': _pale_yellow_box(),
    'light grey ball': union(sphere(0.33, color=(0.80, 0.80, 0.80))),
}


def names() -> Tuple[str, ...]:
  """The library's object names (caption words), sorted."""
  return tuple(sorted(LIBRARY))


def get(name: str) -> Scene:
  """The library scene called `name`; a KeyError naming the available ones otherwise."""
  try:
    return LIBRARY[name]
  except KeyError:
    raise KeyError(f'no scene named {name!r}; available: {", ".join(names())}') from None
