"""Drawing one frame of the world with PIL: background, body, head with its traits, then lighting.

Geometry is in frame units (the frame is 1 x 1, y down); a `View` maps it to pixels, so the same person can be drawn
as a whole frame or as a tight, sharp face crop (the reference image). Frames are drawn at twice the output size
and box-filtered down, which anti-aliases the cartoon edges.

Facial features live on the face surface in (u, v) coordinates (u across, v down, both in [-1, 1] of the face's
half-width/half-height) and are projected with the head's yaw and pitch as points on a sphere, so a turn moves the
eyes, nose, mouth, marks and glasses sideways and squeezes the far side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .motions import Pose
from .traits import CLOTHES_COLOURS, EYE_COLOURS, Identity, Scene

HEAD_CENTRE = (0.5, 0.40)
HEAD_HALF_HEIGHT = 0.22
SUPERSAMPLE = 2


@dataclass
class View:
    """Frame units -> pixels of a canvas: pixel = (point - origin) * zoom."""

    ox: float
    oy: float
    zoom: float

    def pt(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.ox) * self.zoom, (y - self.oy) * self.zoom)

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        (x0, y0), (x1, y1) = self.pt(cx - abs(rx), cy - abs(ry)), self.pt(cx + abs(rx), cy + abs(ry))
        return [x0, y0, max(x1, x0 + 0.5), max(y1, y0 + 0.5)]


def _shade(rgb, factor: float, alpha: int | None = None):
    out = tuple(int(np.clip(c * factor, 0, 255)) for c in rgb)
    return out if alpha is None else (*out, alpha)


@dataclass
class Head:
    """A placed head: centre, half-width, half-height (frame units) and pose."""

    cx: float
    cy: float
    hw: float
    hh: float
    yaw: float
    pitch: float

    def project(self, u: float, v: float) -> tuple[float, float, float]:
        """Face-surface point -> (x, y, foreshortening); foreshortening <= 0 means hidden behind the head."""
        phi = np.arcsin(np.clip(u, -0.99, 0.99)) + self.yaw
        psi = np.arcsin(np.clip(v, -0.99, 0.99)) + self.pitch
        fx = float(np.cos(phi))
        phi = float(np.clip(phi, -np.pi / 2, np.pi / 2))
        psi = float(np.clip(psi, -np.pi / 2, np.pi / 2))
        return self.cx + np.sin(phi) * self.hw, self.cy + np.sin(psi) * self.hh, fx


def place_head(identity: Identity, pose: Pose) -> Head:
    hh = HEAD_HALF_HEIGHT * pose.scale
    return Head(HEAD_CENTRE[0] + pose.dx, HEAD_CENTRE[1] + pose.dy, hh * identity.face_aspect, hh, pose.yaw, pose.pitch)


def face_box(head: Head) -> tuple[float, float, float, float]:
    """The face + hair box in frame units (what a detector would return)."""
    return (head.cx - 1.15 * head.hw, head.cy - 1.2 * head.hh, head.cx + 1.15 * head.hw, head.cy + 1.05 * head.hh)


def crop_box(head: Head) -> tuple[float, float, float]:
    """The square reference crop around a head: (x0, y0, side) in frame units."""
    side = 2.7 * head.hh
    return head.cx - side / 2, head.cy - 0.08 * head.hh - side / 2, side


# ---------------------------------------------------------------- backgrounds


def draw_background(draw: ImageDraw.ImageDraw, view: View, kind: str, rng_values: np.ndarray) -> None:
    """Static scenery; `rng_values` (16 numbers in [0, 1)) vary colours and placements per clip."""
    r = rng_values

    def rect(x0, y0, x1, y1, colour):
        (a, b), (c, d) = view.pt(x0, y0), view.pt(x1, y1)
        draw.rectangle([a, b, c, d], fill=colour)

    def blob(cx, cy, rad, colour):
        draw.ellipse(view.box(cx, cy, rad, rad), fill=colour)

    if kind == "studio":
        palette = [(190, 190, 200), (200, 180, 160), (150, 170, 190), (170, 200, 170), (210, 200, 150)]
        rect(-2, -2, 3, 3, palette[int(r[0] * len(palette))])
        rect(-2, 0.75, 3, 3, _shade(palette[int(r[0] * len(palette))], 0.85))
    elif kind == "park":
        rect(-2, -2, 3, 3, (140 + int(40 * r[1]), 190 + int(30 * r[1]), 240))
        rect(-2, 0.55, 3, 3, (70, 150 + int(40 * r[2]), 60))
        for k in range(3):
            x = -0.1 + 1.2 * r[3 + k]
            rect(x - 0.02, 0.35, x + 0.02, 0.6, (100, 70, 40))
            blob(x, 0.3, 0.12 + 0.05 * r[6 + k], (40, 110 + int(40 * r[9]), 40))
    elif kind == "street":
        rect(-2, -2, 3, 3, (185, 190, 200))
        x = -0.3
        k = 0
        while x < 1.3:
            w = 0.2 + 0.15 * r[k % 16]
            top = 0.05 + 0.35 * r[(k + 5) % 16]
            colour = [(120, 110, 105), (150, 140, 120), (100, 100, 115), (160, 120, 100)][k % 4]
            rect(x, top, x + w, 0.8, colour)
            for wy in np.arange(top + 0.05, 0.7, 0.1):
                for wx in np.arange(x + 0.04, x + w - 0.04, 0.08):
                    rect(wx, wy, wx + 0.035, wy + 0.05, (210, 220, 230))
            x += w + 0.01
            k += 1
        rect(-2, 0.8, 3, 3, (90, 90, 95))
    elif kind == "beach":
        rect(-2, -2, 3, 3, (150, 200, 245))
        rect(-2, 0.48, 3, 3, (40, 110 + int(40 * r[1]), 190))
        rect(-2, 0.62, 3, 3, (235, 215, 160))
        blob(0.1 + 0.8 * r[2], 0.1, 0.06, (255, 240, 170))
    elif kind == "office":
        rect(-2, -2, 3, 3, (220, 205, 175))
        wx = 0.05 + 0.6 * r[1]
        rect(wx, 0.08, wx + 0.3, 0.5, (90, 80, 70))
        rect(wx + 0.02, 0.1, wx + 0.28, 0.48, (170, 210, 240))
        rect(-2, 0.72, 3, 0.78, (130, 90, 50))
        rect(-2, 0.78, 3, 3, (110, 110, 120))
    elif kind == "night city":
        rect(-2, -2, 3, 3, (15, 20, 50))
        x, k = -0.3, 0
        while x < 1.3:
            w = 0.2 + 0.15 * r[k % 16]
            top = 0.1 + 0.35 * r[(k + 3) % 16]
            rect(x, top, x + w, 3, (25, 25, 35))
            for j, wy in enumerate(np.arange(top + 0.05, 0.9, 0.09)):
                for i, wx in enumerate(np.arange(x + 0.04, x + w - 0.04, 0.07)):
                    if (i * 7 + j * 3 + k) % 3:
                        rect(wx, wy, wx + 0.03, wy + 0.04, (240, 210, 90))
            x += w + 0.02
            k += 1
        blob(0.15 + 0.7 * r[2], 0.1, 0.05, (235, 235, 210))
    else:
        raise ValueError(f"unknown background {kind!r}")


# ---------------------------------------------------------------- the person


def _ellipse_cap(head: Head, view: View, grow: float, v_cut: float) -> list[tuple[float, float]]:
    """Polygon of the head ellipse (grown by `grow`) above the line v = v_cut (in head half-heights)."""
    pts = []
    for a in np.linspace(np.pi, 2 * np.pi, 25):
        x, y = np.cos(a), np.sin(a)
        if y <= v_cut:
            pts.append(view.pt(head.cx + grow * head.hw * x, head.cy + grow * head.hh * y))
    half = np.sqrt(max(0.0, 1 - v_cut**2))
    return [view.pt(head.cx - grow * head.hw * half, head.cy + grow * head.hh * v_cut)] + pts + [
        view.pt(head.cx + grow * head.hw * half, head.cy + grow * head.hh * v_cut)
    ]


def draw_body(draw: ImageDraw.ImageDraw, view: View, identity: Identity, scene: Scene, head: Head) -> None:
    hh, cx, cy = head.hh, head.cx, head.cy
    colour = CLOTHES_COLOURS[scene.clothes_colour]
    skin = identity.skin_rgb
    shoulder_y = cy + 1.3 * hh
    # torso: a wide rounded shape from the shoulders down past the frame
    draw.rounded_rectangle(
        [*view.pt(cx - 1.55 * hh, shoulder_y), *view.pt(cx + 1.55 * hh, cy + 4.5 * hh)], radius=0.6 * hh * view.zoom,
        fill=colour,
    )
    if scene.garment == "hoodie":
        draw.ellipse(view.box(cx, shoulder_y, 0.75 * hh, 0.3 * hh), fill=_shade(colour, 0.7))
    # neck
    draw.rectangle([*view.pt(cx - 0.3 * hh, cy + 0.6 * hh), *view.pt(cx + 0.3 * hh, shoulder_y + 0.1 * hh)],
                   fill=_shade(skin, 0.88))
    if scene.garment == "t-shirt":
        draw.chord(view.box(cx, shoulder_y, 0.4 * hh, 0.3 * hh), 0, 180, fill=_shade(skin, 0.88))
    elif scene.garment == "shirt":
        collar = (250, 250, 250) if scene.clothes_colour != "white" else (170, 170, 180)
        for side in (-1, 1):
            draw.polygon([view.pt(cx, shoulder_y + 0.35 * hh), view.pt(cx + side * 0.45 * hh, shoulder_y - 0.05 * hh),
                          view.pt(cx + side * 0.15 * hh, shoulder_y - 0.05 * hh)], fill=collar)
        for k in range(3):
            draw.ellipse(view.box(cx, shoulder_y + (0.6 + 0.45 * k) * hh, 0.05 * hh, 0.05 * hh), fill=_shade(colour, 0.5))
    elif scene.garment == "sweater":
        draw.chord(view.box(cx, shoulder_y, 0.45 * hh, 0.3 * hh), 0, 180, fill=_shade(colour, 0.7))
        draw.chord(view.box(cx, shoulder_y, 0.33 * hh, 0.2 * hh), 0, 180, fill=_shade(skin, 0.88))
    elif scene.garment == "hoodie":
        for side in (-1, 1):
            x = cx + side * 0.2 * hh
            draw.line([view.pt(x, shoulder_y + 0.1 * hh), view.pt(x, shoulder_y + 0.8 * hh)], fill=(245, 245, 245),
                      width=max(1, int(0.06 * hh * view.zoom)))
    elif scene.garment == "jacket":
        inner = (240, 240, 240) if scene.clothes_colour in ("black", "grey", "blue", "purple") else (40, 40, 45)
        draw.polygon([view.pt(cx - 0.35 * hh, shoulder_y - 0.02 * hh), view.pt(cx + 0.35 * hh, shoulder_y - 0.02 * hh),
                      view.pt(cx + 0.15 * hh, cy + 4.5 * hh), view.pt(cx - 0.15 * hh, cy + 4.5 * hh)], fill=inner)
        for side in (-1, 1):
            draw.line([view.pt(cx + side * 0.35 * hh, shoulder_y), view.pt(cx + side * 0.12 * hh, shoulder_y + 1.2 * hh)],
                      fill=_shade(colour, 0.55), width=max(1, int(0.08 * hh * view.zoom)))


def draw_hair_back(draw: ImageDraw.ImageDraw, view: View, identity: Identity, head: Head) -> None:
    hair, style = identity.hair_rgb, identity.hair_style
    cx, cy, hw, hh = head.cx, head.cy, head.hw, head.hh
    if style == "long":
        draw.rounded_rectangle([*view.pt(cx - 1.2 * hw, cy - 0.9 * hh), *view.pt(cx + 1.2 * hw, cy + 1.7 * hh)],
                               radius=0.5 * hw * view.zoom, fill=hair)
    elif style == "bob":
        draw.rounded_rectangle([*view.pt(cx - 1.18 * hw, cy - 0.9 * hh), *view.pt(cx + 1.18 * hw, cy + 0.75 * hh)],
                               radius=0.4 * hw * view.zoom, fill=hair)
    elif style == "ponytail":
        side = -1.0 if head.yaw > 0.1 else 1.0  # the tail swings to the side the face turns away from
        draw.ellipse(view.box(cx + side * 1.05 * hw, cy + 0.1 * hh, 0.32 * hw, 0.75 * hh), fill=hair)
    elif style == "curly":
        draw.ellipse(view.box(cx, cy - 0.25 * hh, 1.3 * hw, 1.0 * hh), fill=hair)


def draw_hair_front(draw: ImageDraw.ImageDraw, view: View, identity: Identity, head: Head) -> None:
    hair, style = identity.hair_rgb, identity.hair_style
    if style == "bald":
        return
    if style == "buzz":
        blend = tuple(int(0.6 * h + 0.4 * s) for h, s in zip(hair, identity.skin_rgb))
        draw.polygon(_ellipse_cap(head, view, 1.02, -0.55), fill=blend)
        return
    cut = {"short": -0.5, "curly": -0.45, "long": -0.5, "bob": -0.45, "ponytail": -0.55}[style]
    draw.polygon(_ellipse_cap(head, view, 1.07, cut), fill=hair)
    if style == "curly":
        for a in np.linspace(np.pi * 1.05, np.pi * 1.95, 7):
            x, y = head.cx + 1.05 * head.hw * np.cos(a), head.cy + 1.0 * head.hh * np.sin(a)
            draw.ellipse(view.box(x, y, 0.28 * head.hw, 0.22 * head.hh), fill=hair)
    if style in ("long", "bob"):  # side locks framing the face
        for side in (-1, 1):
            x = head.cx + side * 0.95 * head.hw
            draw.ellipse(view.box(x, head.cy - 0.1 * head.hh, 0.17 * head.hw, 0.6 * head.hh), fill=hair)


def draw_hat(draw: ImageDraw.ImageDraw, view: View, scene: Scene, head: Head) -> None:
    if scene.hat == "none":
        return
    colour = CLOTHES_COLOURS[scene.hat_colour]
    if scene.hat == "cap":
        draw.polygon(_ellipse_cap(head, view, 1.1, -0.4), fill=colour)
        bx, by, _ = head.project(0.0, -0.42)
        draw.ellipse(view.box(bx, by, 0.9 * head.hw, 0.12 * head.hh), fill=_shade(colour, 0.75))
    elif scene.hat == "beanie":
        draw.polygon(_ellipse_cap(head, view, 1.12, -0.3), fill=colour)
        y0, y1 = head.cy - 0.55 * head.hh, head.cy - 0.3 * head.hh
        half = 1.12 * head.hw * np.sqrt(1 - 0.3**2)
        draw.rectangle([*view.pt(head.cx - half, y0), *view.pt(head.cx + half, y1)], fill=_shade(colour, 0.75))


def draw_face(draw: ImageDraw.ImageDraw, view: View, identity: Identity, head: Head, pose: Pose) -> None:
    skin = identity.skin_rgb
    hw, hh = head.hw, head.hh
    px = lambda u, v: view.pt(*head.project(u, v)[:2])  # noqa: E731
    thin = lambda k: max(1, int(round(k * hh * view.zoom)))  # noqa: E731
    # fine marks first so beard and glasses cover them where they overlap
    for u, v, rad in identity.mark_points:
        x, y, fx = head.project(u, v)
        if fx > 0.25:
            colour = _shade(skin, 0.62) if identity.marks == "freckles" else (60, 35, 25)
            draw.ellipse(view.box(x, y, rad * hw * max(fx, 0.4), rad * hw), fill=colour)
    # beard
    beard_colour = identity.hair_rgb if identity.hair_style != "bald" else (60, 45, 35)
    if identity.beard in ("full", "stubble"):
        outline = [(-0.92, 0.05), (-0.85, 0.45), (-0.55, 0.8), (0.0, 0.98), (0.55, 0.8), (0.85, 0.45), (0.92, 0.05),
                   (0.45, 0.3), (0.0, 0.32), (-0.45, 0.3)]
        fill = beard_colour if identity.beard == "full" else (*beard_colour, 110)
        draw.polygon([px(u, v) for u, v in outline], fill=fill)
    elif identity.beard == "goatee":
        x, y, fx = head.project(0.0, 0.84)
        draw.ellipse(view.box(x, y, 0.22 * hw * max(fx, 0.3), 0.13 * hh), fill=beard_colour)
    # eyes
    iris = EYE_COLOURS[identity.eye_colour]
    for side in (-1, 1):
        u = side * identity.eye_offset
        x, y, fx = head.project(u, -0.05)
        if fx <= 0.15:
            continue
        ex, ey = 0.2 * hw * fx, 0.14 * hh * pose.eye_open * (1 - 0.35 * pose.smile)
        if ey < 0.03 * hh:
            draw.line([view.pt(x - ex, y), view.pt(x + ex, y)], fill=_shade(skin, 0.45), width=thin(0.05))
        else:
            draw.ellipse(view.box(x, y, ex, ey), fill=(250, 250, 250))
            draw.ellipse(view.box(x, y, 0.12 * hw * fx, min(0.12 * hw, ey)), fill=iris)
            draw.ellipse(view.box(x, y, 0.045 * hw * fx, min(0.045 * hw, ey)), fill=(10, 10, 10))
        # brow
        brow = _shade(identity.hair_rgb if identity.hair_style != "bald" else (70, 50, 35), 0.8)
        width = {"thin": 0.045, "thick": 0.11, "arched": 0.06}[identity.brows]
        mid = -0.38 if identity.brows == "arched" else -0.3
        pts = [px(u - 0.2, -0.28), px(u, mid), px(u + 0.2, -0.28)]
        draw.line(pts, fill=brow, width=thin(width), joint="curve")
    # nose
    top, tip = px(0.0, -0.02), px(0.0, -0.02 + identity.nose_length * 2)
    draw.line([top, tip], fill=_shade(skin, 0.72), width=thin(0.05))
    # moustache (above the mouth)
    if identity.beard == "moustache":
        pts = [px(-identity.mouth_width * 0.9, 0.43), px(0.0, 0.36), px(identity.mouth_width * 0.9, 0.43)]
        draw.line(pts, fill=beard_colour, width=thin(0.1), joint="curve")
    # mouth: neutral line, smile curve (with teeth), or open
    mw = identity.mouth_width * (1 + 0.25 * pose.smile)
    lip = (150, 45, 50)
    if pose.mouth_open > 0.1:
        x, y, fx = head.project(0.0, 0.55)
        draw.ellipse(view.box(x, y, mw * hw * fx * 0.75, 0.17 * hh * pose.mouth_open), fill=(90, 20, 25))
    elif pose.smile > 0.1:
        lift = 0.12 * pose.smile
        pts = [px(-mw, 0.52 - lift), px(-mw * 0.5, 0.56 + lift * 0.4), px(0.0, 0.58 + lift * 0.6),
               px(mw * 0.5, 0.56 + lift * 0.4), px(mw, 0.52 - lift)]
        draw.polygon(pts, fill=(250, 250, 245) if pose.smile > 0.5 else lip)
        draw.line(pts, fill=lip, width=thin(0.05), joint="curve")
    else:
        draw.line([px(-mw, 0.55), px(mw, 0.55)], fill=lip, width=thin(0.05))
    # glasses
    if identity.glasses != "none":
        frame = (25, 25, 25)
        centres = []
        for side in (-1, 1):
            x, y, fx = head.project(side * identity.eye_offset, -0.05)
            centres.append((x, y, fx))
            if fx <= 0.15:
                continue
            rx, ry = 0.3 * hw * fx, 0.22 * hh
            if identity.glasses == "round":
                draw.ellipse(view.box(x, y, rx, ry), outline=frame, width=thin(0.05))
            else:
                draw.rectangle(view.box(x, y, rx, ry * 0.85), outline=frame, width=thin(0.05))
        (x0, y0, f0), (x1, y1, f1) = centres
        if f0 > 0.15 and f1 > 0.15:
            draw.line([view.pt(x0 + 0.3 * hw * f0, y0), view.pt(x1 - 0.3 * hw * f1, y1)], fill=frame, width=thin(0.05))


def draw_person(draw: ImageDraw.ImageDraw, view: View, identity: Identity, scene: Scene, pose: Pose,
                head: Head, with_hat: bool = True) -> None:
    draw_hair_back(draw, view, identity, head)
    draw_body(draw, view, identity, scene, head)
    draw.ellipse(view.box(head.cx, head.cy, head.hw, head.hh), fill=identity.skin_rgb)
    if identity.face_shape == "square":  # a squarer jaw
        draw.rounded_rectangle(view.box(head.cx, head.cy + 0.35 * head.hh, 0.92 * head.hw, 0.55 * head.hh),
                               radius=0.3 * head.hw * view.zoom, fill=identity.skin_rgb)
    draw_face(draw, view, identity, head, pose)
    draw_hair_front(draw, view, identity, head)
    if with_hat:
        draw_hat(draw, view, scene, head)


# ---------------------------------------------------------------- lighting


def light_field(kind: str, height: int, width: int, view: View) -> np.ndarray:
    """(H, W, 3) multiplicative light of a lighting condition, in frame units so crops agree with frames."""
    xs = view.ox + (np.arange(width) + 0.5) / view.zoom
    field = np.ones((height, width, 3), np.float32)
    if kind == "daylight":
        field *= 1.05
    elif kind == "warm sunset":
        field *= np.array([1.1, 0.88, 0.65], np.float32)
    elif kind == "dim":
        field *= 0.5
    elif kind == "cool blue":
        field *= np.array([0.72, 0.85, 1.15], np.float32)
    elif kind in ("light from the left", "light from the right"):
        ramp = np.clip(xs, -0.5, 1.5)
        ramp = 1.3 - 0.75 * ramp if kind == "light from the left" else 0.55 + 0.75 * ramp
        field *= ramp[None, :, None].astype(np.float32)
    else:
        raise ValueError(f"unknown lighting {kind!r}")
    return field


def render_frame(identity: Identity, scene: Scene, pose: Pose, bg_values: np.ndarray, view: View, size: int,
                 with_hat: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame: uint8 RGB (size, size, 3), person mask and face mask (size, size) bool.

    `view` maps frame units to output pixels; drawing happens at SUPERSAMPLE x that size.
    """
    big = size * SUPERSAMPLE
    big_view = View(view.ox, view.oy, view.zoom * SUPERSAMPLE)
    head = place_head(identity, pose)
    canvas = Image.new("RGB", (big, big))
    draw_background(ImageDraw.Draw(canvas), big_view, scene.background, bg_values)
    person = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw_person(ImageDraw.Draw(person, "RGBA"), big_view, identity, scene, pose, head, with_hat)
    canvas.paste(person, (0, 0), person)
    face = Image.new("L", (big, big), 0)
    ImageDraw.Draw(face).ellipse(big_view.box(head.cx, head.cy, head.hw, head.hh), fill=255)
    rgb = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    rgb = rgb * light_field(scene.lighting, size, size, view)
    person_mask = np.asarray(person.getchannel("A").resize((size, size), Image.Resampling.BOX)) >= 128
    face_mask = np.asarray(face.resize((size, size), Image.Resampling.BOX)) >= 128
    return np.clip(rgb, 0, 255).astype(np.uint8), person_mask, face_mask
