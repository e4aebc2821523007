"""Sequence tasks: data splits, losses and metrics for training and evaluating qrnn models.

Build one by name with :func:`get_task`; :data:`TASKS` lists the registered names::

    from qrnn.tasks import get_task
    task = get_task("copying", delay=20)
    splits = task.splits()          # TensorDatasets of (inputs, targets)
"""

from qrnn.tasks.adding import AddingTask
from qrnn.tasks.base import TASKS, GeneratedTask, Splits, Task, get_task
from qrnn.tasks.copying import CopyingTask
from qrnn.tasks.digits import DigitsTask
from qrnn.tasks.images import ImageSequenceTask
from qrnn.tasks.lm import LanguageModelTask
from qrnn.tasks.mnist import FashionMNISTTask, MNISTTask
from qrnn.tasks.sentiment import SentimentTask
from qrnn.tasks.translation import TranslationTask

__all__ = [
    "TASKS",
    "AddingTask",
    "CopyingTask",
    "DigitsTask",
    "FashionMNISTTask",
    "GeneratedTask",
    "ImageSequenceTask",
    "LanguageModelTask",
    "MNISTTask",
    "SentimentTask",
    "Splits",
    "Task",
    "TranslationTask",
    "get_task",
]
