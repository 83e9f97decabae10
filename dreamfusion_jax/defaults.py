"""The config schema: every field, the paper's defaults, a comment on each.

Numbers come from DreamFusion (Poole et al. 2023; section numbers refer to ../shared/docs/paper.md,
which cites the paper's own sections). Where the paper is silent ([NIP] in paper.md) the comment
says what we chose and why. config_check validates every config against this one (a field it
lacks is a typo). The user-facing configs (configs/*.py) start from it and override a handful of
fields; every field is overridable on the command line, e.g.

  python run_train.py --config=configs/hamburger.py --config.guidance.scale=50 \
      --config.prompts.view_mode=none --config.ablation.textureless=False

World conventions (chosen once; see dreamfusion_jax/camera.py): +z is up; azimuth is measured
counter-clockwise seen from above, from the +x axis; the object's "front" faces +x, so a camera at
azimuth 0 sees the front.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seeds every random draw (init, cameras, t, eps); same seed, same bits.
  c.num_steps = 15_000  # Optimisation steps [P §3.2]. Schedules have their own lengths (below).
  c.prompt = 'a DSLR photo of a delicious hamburger'  # The text; view words are appended [P §3.2].
  # Unconditional prompt for classifier-free guidance; '' is the empty-string embedding the peers
  # use [NIP §1]. A non-empty string makes it a negative prompt.
  c.negative_prompt = ''

  # Cameras [P §3.2, A.2; paper.md §4].
  c.camera = ml_collections.ConfigDict()
  c.camera.elevation_range_deg = (-10.0, 90.0)  # Elevation band [P §3.2].
  # Probability of drawing elevation uniform in angle (oversamples the pole, "helpful" [P A.2]);
  # otherwise uniform in area over the same band (threestudio's reading of "half-sphere" [AMB]).
  c.camera.uniform_angle_prob = 0.5
  c.camera.azimuth_range_deg = (0.0, 360.0)  # Azimuth range, uniform [P §3.2].
  c.camera.distance_range = (1.0, 1.5)  # Distance from the origin, uniform [P §3.2].
  c.camera.position_jitter = 0.1  # Camera position += U(-j, j)^3 [P A.2].
  # Look-at point ~ N(0, s^2 I). The paper writes N(0, 0.2 I); both peers read 0.2 as a std [AMB].
  c.camera.lookat_std = 0.2
  c.camera.up_std = 0.02  # Up vector = +z + N(0, s^2 I); 0.02 read as a std like the peers [AMB].
  # Focal length = lambda * W with lambda ~ U(0.7, 1.35): FOV 40.7..71.1 degrees [P §3.2].
  c.camera.focal_mult_range = (0.7, 1.35)

  # Point light [P A.2; paper.md §3].
  c.light = ml_collections.ConfigDict()
  c.light.direction_std = 1.0  # Light direction ~ N(camera position, s^2 I), normalised [P A.2].
  c.light.distance_range = (0.8, 1.5)  # |light| ~ U(0.8, 1.5) [P A.2].
  c.light.ambient = 0.1  # Ambient intensity of shaded renders [P A.2].
  c.light.diffuse = 0.9  # Diffuse intensity of shaded renders [P A.2].

  # Shading mix [P A.2]: albedo only for the first steps, then albedo / lambertian / textureless.
  c.shading = ml_collections.ConfigDict()
  c.shading.albedo_only_steps = 1_000  # Albedo-only warm-up length, in steps [P A.2].
  c.shading.albedo_prob = 0.25  # After the warm-up, probability of an albedo render [P A.2].
  c.shading.textureless_prob = 0.5  # Of the shaded renders, the fraction textureless [P A.2].

  # Ablation toggles (paper Fig. 6): each switches one of the paper's features off.
  c.ablation = ml_collections.ConfigDict()
  c.ablation.shading = True  # False: every render is albedo only (no lighting, no textureless).
  c.ablation.textureless = True  # False: shaded renders keep their albedo (no textureless renders).

  # View-dependent prompts [P §3.2, A.2; paper.md §5].
  c.prompts = ml_collections.ConfigDict()
  # 'discrete': the paper's nearest view word; 'interpolated': front/side/back embeddings blended
  # by azimuth (stable-dreamfusion's scheme); 'none': the plain prompt for every view (ablation);
  # 'fine': left side / right side told apart and an oblique-top band (dreamfusion_jax/prompts.py).
  c.prompts.view_mode = 'discrete'
  c.prompts.overhead_deg = 60.0  # Elevation above which the view is "overhead" [P §3.2].
  c.prompts.front_deg = 45.0  # |azimuth| below this is "front" (threestudio's default) [NIP].
  c.prompts.back_deg = 135.0  # |azimuth| above this is "back" (threestudio's default) [NIP].
  # 'fine' only: elevation above this (up to overhead_deg) is "oblique top" (our choice: the
  # middle of the band between the held-out 30-degree ring and overhead).
  c.prompts.oblique_deg = 45.0
  # Negatives per view against the Janus problem: 'none' (the paper: uncond = negative_prompt);
  # 'views': a view's unconditional embedding is the weighted mean of the views it must not look
  # like (the back view's names the front); 'perp_neg': Perp-Neg (Armandpour et al. 2023), the
  # negatives' directions projected perpendicular to eps_cond - eps_uncond (sds.py).
  c.prompts.negatives = 'none'
  # Negative weights at the bucket centres: threestudio's Perp-Neg schedule a e^(-b r) + c at
  # r = 0 or 1 (prompt_processors/base.py: f_sf(0), f_fs(0), f_fsb(0), f_sb(0)).
  c.prompts.neg_front_side = 1.574  # Front view: weight of "side view" as a negative.
  c.prompts.neg_side_front = 1.574  # Side view(s): weight of "front view".
  c.prompts.neg_back_front = 1.967  # Back view: weight of "front view".
  c.prompts.neg_back_side = 0.394  # Back view: weight of "side view" (split over left/right).
  c.prompts.neg_side_opposite = 1.0  # 'fine': a side view's weight on the other side (ours).

  # The NeRF MLP [P A.2; paper.md §2].
  c.field = ml_collections.ConfigDict()
  c.field.num_freqs = 8  # IPE frequencies 2^0..2^(L-1), L = 8 [P A.2].
  # How lambda_Sigma sets the IPE covariance. 'lambda': Sigma = lambda*I, the paper's text as read
  # (paper.md §2); with it frequencies 2^6, 2^7 stay attenuated (<= 0.017) even at the end of the
  # anneal, a smoothness prior that suits 64x64 renders. 'lambda_squared': Sigma = lambda^2 * I.
  c.field.ipe_covariance = 'lambda'
  c.field.num_blocks = 5  # Residual blocks [P A.2].
  c.field.width = 128  # Units per block [P A.2].
  c.field.density_bias_scale = 5.0  # lambda_tau of the density blob [P A.2].
  c.field.density_bias_std = 0.2  # sigma_tau of the density blob [P A.2].
  # Constant added to the raw density before exp [NIP]. 0 is the paper as written: the MLP's
  # initial raw output ~N(0, 1) then fills the whole sphere with density ~1 per unit, a fog of
  # opacity ~0.9 in front of the blob. MultiNeRF adds -1 (before softplus); a negative offset
  # starts from the blob in empty space instead.
  c.field.density_offset = 0.0
  # Upper clip on the pre-activation density before exp: exp(15) ~ 3e6 is opaque over any interval
  # we sample, and the clip keeps a diverging MLP from producing inf.
  c.field.max_log_density = 15.0
  # Background MLP on the encoded ray direction [P §3.1]; size not in the paper [NIP]: we take
  # stable-dreamfusion's 2 layers with a small width and a low-frequency encoding, so the
  # background stays smooth and cannot paint the object.
  # 'mlp' (the paper's), 'white' (a known background), or 'random' (the toy world's: each
  # training view is composited over one of toy.backgrounds, drawn uniformly; evaluation and
  # previews on white).
  c.field.background = 'mlp'
  c.field.bg_num_freqs = 4  # Direction encoding frequencies 2^0..2^3.
  c.field.bg_width = 32  # Units per hidden layer.
  c.field.bg_num_layers = 2  # Hidden layers.

  # Rendering [P §3.1, §3.2; paper.md §2].
  c.render = ml_collections.ConfigDict()
  c.render.resolution = 64  # Render size, square [P §3.2].
  # Views per step, over all devices: the paper's batch of 4 [P §3.2]. Split evenly over the
  # devices (4 on one GPU, 1 on each of 4 chips); view v of a step draws from the global view
  # index v, so every layout takes the same step (train.py).
  c.render.batch_size = 4
  c.render.bound_radius = 1.4  # The NeRF is queried only inside this sphere [P §3.2].
  c.render.near = 0.05  # Closest sample to the camera (cameras may sit inside the sphere) [NIP].
  # Stratified samples per ray [NIP]; 64 + 32 importance follows stable-dreamfusion's vanilla
  # renderer (benchmarks/render_sampling.py measures the choice).
  c.render.num_samples = 64
  # Importance samples drawn from the coarse weights of the same MLP (0 disables). We resample
  # rather than train mip-NeRF 360 proposal MLPs: no extra network or interlevel loss [NIP].
  c.render.num_importance_samples = 32

  # Schedules, each with its own length in steps, independent of num_steps, so that extending a
  # run never changes its past [P A.2; paper.md §7 table].
  c.schedule = ml_collections.ConfigDict()
  c.schedule.lambda_sigma_start = 5e-2  # IPE covariance scale at step 0 [P A.2].
  c.schedule.lambda_sigma_end = 2e-3  # ... reached at lambda_sigma_steps, then constant [P A.2].
  c.schedule.lambda_sigma_steps = 5_000  # Linear anneal length [P A.2].
  c.schedule.orientation_start = 1e-4  # Orientation-loss weight at step 0 [P A.2].
  c.schedule.orientation_end = 1e-2  # ... reached at orientation_steps, then constant [P A.2].
  c.schedule.orientation_steps = 5_000  # Anneal length [P A.2].
  # 'linear' (threestudio's ramp) or 'log' (geometric); the paper does not say [AMB].
  c.schedule.orientation_interp = 'linear'

  # Regularizers [P §3.1, A.2; paper.md §6]. Reduction: each term is summed over the rays of a
  # view (as the SDS term is summed over its pixels, Fig. 8) and averaged over views, so their
  # balance with SDS does not change with the render resolution.
  c.loss = ml_collections.ConfigDict()
  c.loss.opacity_weight = 1e-3  # Weight of sqrt(A^2 + 0.01); the paper's range is [1e-3, 5e-3].
  c.loss.opacity_eps = 0.01  # The 0.01 inside the square root [P A.2].

  # The diffusion prior and SDS [P §2, §3.2; paper.md §1].
  c.guidance = ml_collections.ConfigDict()
  # Backend (dreamfusion_jax/backends.py): 'stable_diffusion' (its fields nest under
  # guidance.stable_diffusion) or 'empirical' (the toy world's exact prior: its fields are the
  # world's, toy.* below, which also define the objects and the held-out evaluation).
  c.guidance.name = 'stable_diffusion'
  # omega of eps_hat = (1 + omega) eps_cond - omega eps_uncond [P §2]; omega = 100 [P §3.2].
  # diffusers' guidance_scale is omega + 1 (101 reproduces the paper).
  c.guidance.scale = 100.0
  c.guidance.weighting = 'sigma2'  # w(t): 'sigma2' (sigma_t^2, the paper's) or 'uniform' [P §3.2].
  # t ~ U(0.02, 0.98) [P §3.2]; integer 20..980 for a 1000-step discrete schedule (peers) [NIP].
  c.guidance.t_range = (0.02, 0.98)
  # Stable Diffusion's own fields (guidance.name='stable_diffusion'; other backends ignore them).
  sd = c.guidance.stable_diffusion = ml_collections.ConfigDict()
  # A hub id or a local diffusers-format directory (configs/hamburger.py sets the local
  # models/stable-diffusion-2-1-base; README: where to get it).
  sd.model = ''
  sd.revision = 'main'  # Hub revision (branch, tag or commit) of the model.
  # Weights and computation of the UNet and VAE: 'float32' or 'bfloat16' (half the memory; the
  # latents, eps and the SDS arithmetic stay float32 either way).
  sd.dtype = 'float32'
  sd.vae_resolution = 512  # Renders are resized to this square before the VAE encoder.

  # Optimizer [P A.2; paper.md §7]. The learning rate is a function of the step: linear warm-up
  # lr_init -> lr_peak over warmup_steps, cosine to lr_final at decay_end_step, constant after.
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'shampoo'  # 'shampoo' (the paper's Distributed Shampoo) or 'adam'.
  c.optimizer.lr_init = 1e-9  # [P A.2]
  c.optimizer.lr_peak = 1e-4  # [P A.2]
  c.optimizer.lr_final = 1e-6  # [P A.2]
  c.optimizer.warmup_steps = 3_000  # [P A.2]
  c.optimizer.decay_end_step = 15_000  # End of the cosine (the paper's run length) [P A.2].
  c.optimizer.shampoo = ml_collections.ConfigDict()
  c.optimizer.shampoo.block_size = 128  # [P A.2]
  c.optimizer.shampoo.beta1 = 0.9  # [P A.2]
  c.optimizer.shampoo.beta2 = 0.9  # [P A.2]
  c.optimizer.shampoo.exponent_override = 2  # Inverse square roots L^-1/2 G R^-1/2 [P A.2].
  c.optimizer.shampoo.matrix_epsilon = 1e-6  # The paper's eps, read as matrix_epsilon [AMB].
  # Flags the paper does not name keep google-research distributed_shampoo's defaults [NIP].
  c.optimizer.shampoo.nesterov = True  # Nesterov momentum (reference default).
  c.optimizer.shampoo.start_preconditioning_step = 5  # Grafted steps first (reference default).
  c.optimizer.adam = ml_collections.ConfigDict()
  c.optimizer.adam.b1 = 0.9  # Adam alternative (threestudio's betas).
  c.optimizer.adam.b2 = 0.99  # Second-moment decay (threestudio's).
  c.optimizer.adam.eps = 1e-15  # Denominator floor (threestudio's).

  # The toy world (guidance.name = 'empirical'; dreamfusion_jax/toy/, design.md §5).
  c.toy = ml_collections.ConfigDict()
  # Library objects (dreamfusion_jax/toy/scenes.py) whose captioned renders make the prior; the
  # prompt must be one of them. The others give classifier-free guidance something to push from.
  c.toy.objects = ('toy hamburger', 'red ball', 'blue cube', 'green cylinder', 'yellow cone',
                   'orange box', 'purple capsule', 'snowman', 'white mug', 'pale yellow box',
                   'light grey ball')
  c.toy.images_per_object = 600  # Renders per object, cameras from the training distribution.
  # Grey levels of the solid backgrounds the prior's images are composited over (1.0: white):
  # each render is kept once over each. field.background='random' draws a training view's
  # background from the same levels.
  c.toy.backgrounds = (1.0,)
  # What the prior's images show: 'albedo', or 'mix' (the training shading mix under random
  # lights). benchmarks/ablations.py measures the choice.
  c.toy.image_shading = 'albedo'
  # Caption noise: this fraction of the images lose their view word or get a wrong one (half
  # each), a prior that understands views poorly, like Stable Diffusion's (the Janus study).
  c.toy.caption_noise = 0.0
  c.toy.dataset_seed = 1234  # Seeds the dataset's cameras (independent of the training seed).
  c.toy.sharpness = 200.0  # Analytic density sharpness per unit; surfaces render within 0.007.
  c.toy.cache_dir = '~/.cache/dreamfusion_jax'  # Rendered datasets are cached here.
  c.toy.eval_distance = 1.3  # Held-out camera distance (the middle of the training range).
  c.toy.eval_focal_mult = 1.0  # Held-out focal length / width (FOV 53 degrees).

  # Logging and checkpoints (run_train.py); intervals in steps.
  c.log = ml_collections.ConfigDict()
  c.log.every = 50  # Scalars to TensorBoard and the progress bar.
  c.log.preview_every = 500  # Preview image (shaded | albedo | textureless | normals).
  c.log.preview_resolution = 64  # Preview render size.
  # Held-out metrics (the toy world's) to TensorBoard every this many steps, as curves for
  # run_render.py's report; 0: only at step 0 and the end (metrics.json has both either way).
  c.log.eval_every = 0
  c.log.checkpoint_every = 1_000  # Orbax checkpoint into WORKDIR/checkpoints (and at the end).
  c.log.max_checkpoints = 3  # Checkpoints kept on disk.

  # Debug-only knobs.
  c.debug = ml_collections.ConfigDict()
  c.debug.nan_step = -1  # If >= 0, the gradients at this step are made NaN (tests the skip).
  return c
