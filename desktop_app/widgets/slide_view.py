"""A whole-slide viewer: the pyramid in level-0 coordinates, zoom about the cursor, pan by dragging.

The scene is the slide at level 0 (one scene unit = one level-0 pixel, as OpenSlide, QuPath and the tile
grid count them). The thumbnail fills it at once, so the view is never empty; on top come viewer tiles
read off the UI thread (``slide_reader``) at the level that matches the zoom, finer levels drawn above
coarser ones; above them the heatmap overlay (one pixel per model tile, scaled nearest-neighbour) and the
outline of the selected tile. A click (a press and release without dragging) reports its level-0 point.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from desktop_app.widgets.image_view import array_to_pixmap
from desktop_app.widgets.slide_reader import TILE, TileKey, TileReader, tile_box

MAX_ITEMS = 64  # viewer tiles kept (about 1 MB each); least recently wanted go first
MAX_VISIBLE = 48  # tiles asked for at once (a 1920 x 1200 view needs at most 20 at 512 px)
MAX_SCALE = 4.0  # screen pixels per level-0 pixel at the closest zoom
Z_TILES, Z_OVERLAY, Z_SELECTION = 1.0, 100.0, 101.0
CLICK_SLOP = 4  # a press and release this close together (screen px) is a click, not a drag
BACKDROP = "#3b4148"


def rgba_pixmap(rgba: np.ndarray) -> QPixmap:
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    return QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy())


def level_for(downsamples, wanted: float) -> int:
    """The coarsest level whose downsample is at most ``wanted`` (level 0 when zoomed in past it)."""
    fits = [i for i, d in enumerate(downsamples) if d <= wanted * 1.001]
    return max(fits, key=lambda i: downsamples[i]) if fits else 0


class SlideView(QGraphicsView):
    clicked = Signal(float, float)  # level-0 x, y of a click
    view_changed = Signal()  # zoom, pan or level changed

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(BACKDROP))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zoom_by anchors itself
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setMinimumSize(240, 200)
        self.reader = TileReader(self)
        self.reader.tile_ready.connect(self._tile_ready)
        self._schedule = QTimer(self)
        self._schedule.setSingleShot(True)
        self._schedule.setInterval(30)  # one request after a burst of wheel or drag events
        self._schedule.timeout.connect(self.request_visible)
        self.info = None
        self.slide_id = 0
        self.level = 0
        self.thumb_downsample = 1.0
        self.thumb_item: QGraphicsPixmapItem | None = None
        self.overlay_item: QGraphicsPixmapItem | None = None
        self.selection_item: QGraphicsRectItem | None = None
        self.items: OrderedDict[TileKey, QGraphicsPixmapItem] = OrderedDict()
        self.placeholder = "Open a slide to view it here."
        self._press = None
        self.fitted = False  # showing the whole slide as fitted (kept fitted when the view is resized)

    # --- the slide ------------------------------------------------------------------------------------
    def set_slide(self, path, info, thumbnail: np.ndarray) -> None:
        """Show a newly opened slide: its thumbnail now, its tiles as they are read."""
        self.scene().clear()
        self.items.clear()
        self.overlay_item = self.selection_item = None
        self.info, self.slide_id = info, self.slide_id + 1
        width, height = info.dimensions
        pixmap = array_to_pixmap(thumbnail)
        self.thumb_item = self.scene().addPixmap(pixmap)
        self.thumb_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.thumb_item.setTransform(QTransform.fromScale(width / pixmap.width(), height / pixmap.height()))
        self.thumb_downsample = width / pixmap.width()
        self.reader.open(self.slide_id, path, info.level_dimensions, info.level_downsamples)
        self.fit()

    def has_slide(self) -> bool:
        return self.info is not None

    # --- zoom and pan ---------------------------------------------------------------------------------
    def scale_factor(self) -> float:
        """Screen pixels per level-0 pixel."""
        return self.transform().m11()

    def fit_scale(self) -> float:
        if self.info is None:
            return 1.0
        view, (w, h) = self.viewport().rect(), self.info.dimensions
        return min(view.width() / w, view.height() / h)

    def fit(self) -> None:
        if self.info is None:
            return
        slide = QRectF(0, 0, *self.info.dimensions)
        self.fitInView(slide, Qt.AspectRatioMode.KeepAspectRatio)
        self._pad_scene()
        self.centerOn(slide.center())
        self.fitted = True
        self._changed()

    def _pad_scene(self) -> None:
        """Let the slide be dragged until its edge reaches the view's centre, at any zoom: the point under
        the cursor can then stay there while zooming, even near an edge or with the slide zoomed out."""
        scale, view = self.scale_factor(), self.viewport().rect()
        dx, dy = view.width() / 2 / scale, view.height() / 2 / scale
        self.setSceneRect(QRectF(0, 0, *self.info.dimensions).adjusted(-dx, -dy, dx, dy))

    def one_to_one(self) -> None:
        self.zoom_by(1.0 / self.scale_factor())

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the scene point under ``anchor`` (viewport pixels; default the centre)
        where it is, within 1/2 of the fitted size and ``MAX_SCALE``."""
        if self.info is None:
            return
        now = self.scale_factor()
        target = min(max(now * factor, 0.5 * self.fit_scale()), MAX_SCALE)
        if math.isclose(target, now):
            return
        self.fitted = False
        anchor = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        before = self.mapToScene(anchor.toPoint())
        self.scale(target / now, target / now)
        self._pad_scene()
        after = self.mapFromScene(before)
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + after.x() - anchor.toPoint().x())
        v.setValue(v.value() + after.y() - anchor.toPoint().y())
        self._changed()

    def centre_on(self, x: float, y: float, size: float = 0.0) -> None:
        """Centre the view on level-0 ``(x, y)``; zoom in first if a ``size``-pixel tile would look tiny."""
        if size and size * self.scale_factor() < 48:
            self.zoom_by(112 / (size * self.scale_factor()))
        self.centerOn(x, y)
        self.fitted = False
        self._changed()

    def visible_rect(self) -> QRectF:
        """The part of the slide in view (level-0 pixels)."""
        return self.mapToScene(self.viewport().rect()).boundingRect() & QRectF(0, 0, *self.info.dimensions)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25**steps, event.position())
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().mouseReleaseEvent(event)
        press, self._press = self._press, None
        if press is not None and event.button() == Qt.MouseButton.LeftButton and self.info is not None:
            if (event.position() - press).manhattanLength() > CLICK_SLOP:
                self.fitted = False  # dragged
            else:
                point = self.mapToScene(event.position().toPoint())
                if QRectF(0, 0, *self.info.dimensions).contains(point):
                    self.clicked.emit(point.x(), point.y())

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802 (Qt override)
        super().scrollContentsBy(dx, dy)
        self._changed()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.info is not None and self.fitted:
            self.fit()  # still showing the whole slide: keep showing all of it
        elif self.info is not None:
            centre = self.mapToScene(self.viewport().rect().center())
            self._pad_scene()
            self.centerOn(centre)
        self._changed()

    def _changed(self) -> None:
        self._schedule.start()
        self.view_changed.emit()

    # --- tiles ----------------------------------------------------------------------------------------
    def request_visible(self) -> None:
        """Ask the reader for the visible tiles of the level matching the zoom (nearest the centre first);
        none while the thumbnail is already as sharp as the screen."""
        if self.info is None:
            return
        wanted = 1.0 / (self.scale_factor() * self.devicePixelRatioF())
        self.level = level = level_for(self.info.level_downsamples, wanted)
        self.view_changed.emit()
        if self.info.level_downsamples[level] >= self.thumb_downsample * 0.999:
            self.reader.request([])
            return
        keys = self._visible_keys(level)
        for key in keys:
            if key in self.items:
                self.items.move_to_end(key)
        self.reader.request([k for k in keys if k not in self.items])

    def _visible_keys(self, level: int) -> list[TileKey]:
        rect, (w0, h0) = self.visible_rect(), self.info.dimensions
        lw, lh = self.info.level_dimensions[level]
        sx, sy = w0 / lw, h0 / lh  # level-0 pixels per level pixel
        cols, rows = math.ceil(lw / TILE), math.ceil(lh / TILE)
        c0, c1 = max(0, int(rect.left() / sx // TILE)), min(cols - 1, int(rect.right() / sx // TILE))
        r0, r1 = max(0, int(rect.top() / sy // TILE)), min(rows - 1, int(rect.bottom() / sy // TILE))
        cx, cy = rect.center().x() / sx / TILE - 0.5, rect.center().y() / sy / TILE - 0.5
        keys = [TileKey(self.slide_id, level, c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
        keys.sort(key=lambda k: (k.col - cx) ** 2 + (k.row - cy) ** 2)
        return keys[:MAX_VISIBLE]

    def _tile_ready(self, key: TileKey, rgb: np.ndarray) -> None:
        if key.slide != self.slide_id or key in self.items or self.info is None:
            return
        x, y, _, _ = tile_box(key, self.info.level_dimensions)
        lw, lh = self.info.level_dimensions[key.level]
        sx, sy = self.info.dimensions[0] / lw, self.info.dimensions[1] / lh
        item = self.scene().addPixmap(array_to_pixmap(rgb))
        item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        item.setTransform(QTransform.fromScale(sx, sy))
        item.setPos(x * sx, y * sy)
        item.setZValue(Z_TILES + self.info.level_count - key.level)  # finer levels above coarser ones
        self.items[key] = item
        while len(self.items) > MAX_ITEMS:
            _, old = self.items.popitem(last=False)
            self.scene().removeItem(old)

    # --- overlay and selection ------------------------------------------------------------------------
    def set_overlay(self, rgba: np.ndarray | None, tile_size: float = 1.0, opacity: float = 0.5) -> None:
        """``rgba``: (rows, cols, 4) uint8, one pixel per ``tile_size`` level-0 pixels; None removes it."""
        if self.overlay_item is not None:
            self.scene().removeItem(self.overlay_item)
            self.overlay_item = None
        if rgba is None or self.info is None:
            return
        self.overlay_item = self.scene().addPixmap(rgba_pixmap(rgba))
        self.overlay_item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # square tiles
        self.overlay_item.setTransform(QTransform.fromScale(tile_size, tile_size))
        self.overlay_item.setZValue(Z_OVERLAY)
        self.overlay_item.setOpacity(opacity)

    def set_overlay_opacity(self, opacity: float) -> None:
        if self.overlay_item is not None:
            self.overlay_item.setOpacity(opacity)

    def select(self, x: float | None, y: float = 0.0, size: float = 0.0) -> None:
        """Outline the level-0 square at ``(x, y)`` of side ``size``; ``None`` removes the outline."""
        if self.selection_item is None and x is not None:
            pen = QPen(QColor("#00e5ff"), 2.5)
            pen.setCosmetic(True)  # the same width at any zoom
            self.selection_item = self.scene().addRect(QRectF(), pen)
            self.selection_item.setZValue(Z_SELECTION)
        if self.selection_item is not None:
            self.selection_item.setVisible(x is not None)
            if x is not None:
                self.selection_item.setRect(QRectF(x, y, size, size))

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 (Qt override)
        if self.info is None:
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor("#d8dde3"))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            painter.restore()
