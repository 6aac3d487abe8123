"""From camera footage to person tracks: decode a video, detect people, track them, pick good crops.

Qt-free and store-free: :func:`amd.video.pipeline.track_video` yields progress and finished tracks
(each with a few sharp, unoccluded crops as pixel arrays); storing them is the caller's business
(the workspace glue lives in ``cli/video_jobs.py``).

- :mod:`amd.video.source`: open and validate a video file with OpenCV, iterate its frames.
- :mod:`amd.video.detect`: the :class:`~amd.video.detect.Detector` interface, OpenCV's built-in HOG
  pedestrian detector and a detector read from a user-supplied ONNX file (YOLO-style output).
- :mod:`amd.video.track`: a Kalman-filtered multi-object tracker that links boxes by overlap and by the
  ReID embedding of the target model.
- :mod:`amd.video.pipeline`: crop quality (sharpness, occlusion), the per-track crop selection and the
  frame loop.
"""

from __future__ import annotations

from amd.errors import AmdError


class VideoError(AmdError):
    """A video file or a detector model cannot be used; the message says which and why."""


__all__ = ["VideoError"]
