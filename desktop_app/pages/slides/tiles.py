"""The Slides page's selected tile: a click on the slide (or on a top tile) selects the tissue tile there,
outlines it, reads what the model saw on a worker and attacks it white-box on another; with Show map on, a third
worker computes its attribution map (occlusion on the ONNX file, or Grad-CAM on the checkpoint beside it in the full
edition), drawn over the tile with the panel's opacity slider.

The newest click wins: results of tiles clicked before are dropped when they arrive. If the attack cannot
run for a model (no matching checkpoint, say), the error is shown once and clicks stop attacking that
model automatically; the Attack button still tries again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from desktop_app.pages.diagnose.explain import status_html
from desktop_app.pages.slides.tasks import attack, read_tile, tile_map
from desktop_app.widgets.slide_summary import flip_phrase
from desktop_app.workers import Task
from engine import api
from engine.core.catalog import EXPLAIN_INFO
from engine.core.eps import format_eps


class TileSelection(QObject):
    def __init__(self, page) -> None:
        super().__init__(page)
        self.page, self.panel, self.view = page, page.tile_panel, page.view
        self.index: dict[tuple[int, int], int] = {}  # (row, col) -> index into the prediction's tiles
        self.selected: int | None = None
        self.attacks_available = True
        self._read_task: Task | None = None
        self._attack_task: Task | None = None
        self._attack_broken: Path | None = None  # the model whose attack failed: clicks do not retry it
        self._map_task: Task | None = None
        self.panel.attack_button.clicked.connect(self.attack_selected)
        self.panel.map.show_button.toggled.connect(self._map_toggled)

    def index_tiles(self, prediction) -> None:
        self.index = {(t.row, t.col): i for i, t in enumerate(prediction.tiles)}

    def clear(self, text: str | None = None) -> None:
        self.index, self.selected = {}, None
        self.view.select(None)
        self.panel.clear(*(() if text is None else (text,)))

    def select_at(self, x: float, y: float) -> None:
        """A click at level-0 ``(x, y)``: select the tissue tile there, if any."""
        pred = self.page.prediction
        if pred is None:
            self.panel.clear("Run a prediction first; then click a tile to see it and attack it.")
            return
        i = pred.tile_at(x, y)  # with overlap, the tile centred nearest the click
        if i is None:
            self.selected = None
            self.view.select(None)
            self.panel.clear("No tissue tile here (background, or less tissue than the minimum).")
            return
        self.select(i)

    def go_to(self, i: int) -> None:
        """Select tile ``i`` and centre the view on it (a top tile clicked in the summary)."""
        self.select(i)
        tile = self.page.prediction.tiles[i]
        self.view.centre_on(tile.x + tile.size / 2, tile.y + tile.size / 2, tile.size)

    def select(self, i: int) -> None:
        pred, page = self.page.prediction, self.page
        tile, p = pred.tiles[i], float(pred.probabilities[i])
        self.selected = i
        self.view.select(tile.x, tile.y, tile.size)
        flip = None if pred.flip_eps is None else float(pred.flip_eps[i]) * 255
        self.panel.show_tile(tile, p, pred.predicted(p), pred.positive, flip, bool(pred.uncertain()[i]))
        self.panel.attack_button.setEnabled(self.attacks_available)
        self._read_task = page.start_task("Read tile", read_tile, page.slide_path, tile, pred.level, page.input_size)
        self._read_task.finished.connect(self._tile_read)
        if self.attacks_available and self._attack_broken != page.predicted_with:
            self.attack_selected()
        if self.panel.map.show_button.isChecked():
            self.explain_selected()

    def refresh(self) -> None:
        """The robustness map arrived: show the selected tile's flip eps."""
        if self.selected is not None and self.page.prediction.flip_eps is not None:
            k = float(self.page.prediction.flip_eps[self.selected]) * 255
            self.panel.map_text = f"Robustness map: {flip_phrase(k)}."
            self.panel.set_status("")

    def attack_selected(self) -> Task | None:
        if self.selected is None or not self.attacks_available or self.page.prediction is None:
            return None
        if self._attack_task is not None:
            self._attack_task.cancel()
        pred, page = self.page.prediction, self.page
        how = self.panel.attack()
        self.panel.set_status(f"Attacking the tile ({how.info.short}, eps {format_eps(how.eps)})…")
        args = (page.slide_path, page.predicted_with, pred.tiles[self.selected], pred.level, how)
        self._attack_task = page.start_task("Attack tile", attack, *args)
        self._attack_task.finished.connect(self._attacked)
        self._attack_task.failed.connect(self._attack_failed)
        return self._attack_task

    def _tile_read(self, result: tuple) -> None:
        tile, rgb = result
        if self.sender() is self._read_task and self.selected is not None:
            if self.page.prediction.tiles[self.selected] == tile:
                self.panel.show_input(rgb)

    def _attacked(self, result: dict) -> None:
        if self.sender() is not self._attack_task:
            return  # an older click's attack
        self._attack_task = None
        self.panel.show_attack(result)
        flipped = result["pred_clean"] != result["pred_adv"]
        eps = f"{round(result['eps'] * 255)}/255"
        self.panel.set_status(f"At eps {eps} the call {'flips' if flipped else 'does not flip'}.")

    def _attack_failed(self, exc: BaseException, details: str) -> None:
        if self.sender() is self._attack_task:
            self._attack_task = None
            self._attack_broken = self.page.predicted_with
            self.panel.set_status("The attack could not run (see the error message); Attack tile tries again.")

    # --- the tile's attribution map ---------------------------------------------------------------
    def map_method(self) -> str:
        """Grad-CAM on the checkpoint beside the ONNX file (full edition), else occlusion on the ONNX file itself."""
        model = self.page.predicted_with
        beside = model is not None and api.checkpoint_beside(model).is_file()
        return "gradcam" if self.attacks_available and beside else "occlusion"

    def explain_selected(self) -> Task | None:
        """Compute the selected tile's map on a worker (an earlier tile's map, if still running, is cancelled)."""
        pred, page = self.page.prediction, self.page
        if self.selected is None or pred is None:
            return None
        if self._map_task is not None:
            self._map_task.cancel()
        method = self.map_method()
        self.panel.map.clear(f"Computing the {EXPLAIN_INFO[method].label} map of the tile…")
        args = (page.slide_path, page.predicted_with, pred.tiles[self.selected], pred.level, page.input_size, method)
        self._map_task = page.start_task("Tile map", tile_map, *args)
        self._map_task.finished.connect(self._mapped)
        self._map_task.failed.connect(self._map_failed)
        self._map_task.ended.connect(self._map_ended)
        return self._map_task

    def _mapped(self, result: tuple) -> None:
        tile, r = result
        if self.sender() is not self._map_task or self.selected is None or not self.panel.map.show_button.isChecked():
            return  # an older click's map, or the map was switched off
        if self.page.prediction.tiles[self.selected] != tile:
            return
        caption = f"{EXPLAIN_INFO[r['method']].label} map of {r['target']}"
        failed = bool(r["sanity"] and not r["sanity"]["passed"])
        self.panel.map.set_result(r, caption, status_html(r), failed)

    def _map_failed(self, exc: BaseException, details: str) -> None:
        if self.sender() is self._map_task:
            self.panel.map.set_status("The map could not be computed (see the error message).", failed=True)

    def _map_ended(self) -> None:
        if self.sender() is self._map_task:
            self._map_task = None  # the task object is deleted once it has ended

    def _map_toggled(self, on: bool) -> None:
        if on:
            self.explain_selected()
        elif self._map_task is not None:
            self._map_task.cancel()
