"""What run_train.py's stderr shows around orbax's failures (checkpoints.silence_orbax_echoes).

The failures themselves (a full disk, corrupted steps) are in test_long_runs.py. Their echoes
come from orbax's threads and from garbage collection at times nobody controls (they made that
test flaky), so here they are made on purpose, beside errors that must still get through.
"""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import asyncio, gc, logging
    from dreamfusion_jax import checkpoints

    async def fail(tag):
      raise ValueError(tag)

    class Echo:
      def __init__(self, message):
        self.message = message
      def __del__(self):
        raise RuntimeError(self.message)

    def echoes(tag):
      loop = asyncio.new_event_loop()
      task = loop.create_task(fail(f'orphaned task {tag}'))
      loop.run_until_complete(asyncio.sleep(0.01))
      loop.close()
      del task  # The 'asyncio' logger: Task exception was never retrieved, with a traceback.
      Echo('Event loop is closed')  # An unraisable RuntimeError, as orbax's threads leave.
      Echo(f'another unraisable {tag}')
      logging.getLogger('asyncio').error(f'another asyncio error {tag}')
      gc.collect()

    echoes('unsilenced')
    checkpoints.silence_orbax_echoes()
    echoes('silenced')
''')


def test_orbax_echoes_are_dropped_and_nothing_else_is():
  proc = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Python prints each of them by default, so the script makes what run_train.py would show ...
  assert proc.stderr.count('Task exception was never retrieved') == 1, proc.stderr
  assert 'orphaned task unsilenced' in proc.stderr
  assert proc.stderr.count('Event loop is closed') == 1, proc.stderr
  # ... and once silenced, exactly the two echoes are dropped.
  assert 'orphaned task silenced' not in proc.stderr
  assert 'another unraisable silenced' in proc.stderr
  assert 'another asyncio error silenced' in proc.stderr
