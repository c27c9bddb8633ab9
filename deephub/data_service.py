"""Entry point: `python -m deephub.data_service` starts a tf.data service.

A dispatcher and local workers in one process (the default), a dispatcher
alone (`--workers=0`), or workers for a dispatcher elsewhere
(`--dispatcher_address=host:port`). Training reaches it through
`--config.runtime.data_service=grpc://host:port`; the service then runs the
train input pipeline and streams finished batches to the trainers. The
process serves until it is killed.

  python -m deephub.data_service --port=5050                 # dispatcher + 1 worker
  python -m deephub.data_service --dispatcher_address=HOST:5050 --workers=2
"""

import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from deephub.cli import flags as cli_flags  # noqa: E402
from deephub.errors import UserError  # noqa: E402

flags.DEFINE_integer("port", 5050, "Dispatcher port (0 picks a free one); unused with --dispatcher_address.")
flags.DEFINE_string("dispatcher_address", "", "host:port of a running dispatcher; start only workers for it.")
flags.DEFINE_integer("workers", 1, "tf.data workers to start in this process (0: dispatcher only).")
flags.DEFINE_string(
  "worker_host", socket.gethostname(), "Host name that trainers use to reach this process's workers."
)
flags.DEFINE_string("work_dir", "", "Dispatcher journal folder: a restarted dispatcher resumes its jobs.")
FLAGS = flags.FLAGS


def start(
  *, port: int, dispatcher_address: str, workers: int, worker_host: str, work_dir: str
) -> tuple[object | None, list]:
  """Starts the servers; returns (dispatcher or None, workers). They serve until the process ends.

  Raises:
    UserError: nothing to start, or a negative worker count.
  """
  if workers < 0 or (dispatcher_address and workers == 0):
    raise UserError(f"--workers is {workers}; start 1 or more workers for --dispatcher_address")
  import tensorflow as tf  # Deferred: flag errors should not wait for TensorFlow.

  service = tf.data.experimental.service
  dispatcher = None
  if not dispatcher_address:
    dispatcher = service.DispatchServer(
      service.DispatcherConfig(port=port, work_dir=work_dir or None, fault_tolerant_mode=bool(work_dir))
    )
    dispatcher_address = dispatcher.target.split("://", 1)[1]
  started = [
    service.WorkerServer(
      service.WorkerConfig(dispatcher_address=dispatcher_address, worker_address=f"{worker_host}:%port%")
    )
    for _ in range(workers)
  ]
  return dispatcher, started


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    cli_flags.exit_with(UserError(f"unexpected arguments {argv[1:]}; see --helpfull"))
  try:
    dispatcher, workers = start(
      port=FLAGS.port,
      dispatcher_address=FLAGS.dispatcher_address,
      workers=FLAGS.workers,
      worker_host=FLAGS.worker_host,
      work_dir=FLAGS.work_dir,
    )
  except UserError as error:
    cli_flags.exit_with(error)
  if dispatcher is not None:
    port = dispatcher.target.rsplit(":", 1)[1]
    print(
      f"deephub: tf.data service dispatcher at grpc://{FLAGS.worker_host}:{port} with {len(workers)} "
      f"worker(s); train with --config.runtime.data_service=grpc://{FLAGS.worker_host}:{port}",
      flush=True,
    )
    dispatcher.join()
  else:
    print(f"deephub: {len(workers)} tf.data worker(s) serving {FLAGS.dispatcher_address}", flush=True)
    workers[0].join()


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
