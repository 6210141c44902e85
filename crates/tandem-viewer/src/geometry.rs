//! Where the shared desktop lands in the window, and back: the window's
//! points mapped to desktop pixels for input. Two modes, as the Desktop
//! Sharing API's viewer has them: scaled to the window keeping the aspect
//! ratio (`SmartSizing`), or 1:1 with scrolling when the window is smaller
//! than the desktop. Pure arithmetic, shared by drawing and input so that a
//! click lands on the pixel drawn under it.

/// How the desktop is fitted into the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// Scaled to the window, aspect ratio kept, centred (`SmartSizing` on).
    Fit,
    /// One desktop pixel per window pixel; scrolled when the window is smaller.
    OneToOne,
}

impl std::str::FromStr for ScaleMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fit" => Ok(ScaleMode::Fit),
            "1:1" | "1" | "none" => Ok(ScaleMode::OneToOne),
            other => Err(format!("unknown scale mode {other:?}: expected fit or 1:1")),
        }
    }
}

/// An axis-aligned rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Area {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// Which part of the desktop (`src`) is drawn where in the window (`dst`).
/// The window outside `dst` is background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Placement {
    /// Part of the desktop shown.
    pub src: Area,
    /// Where it is drawn in the window.
    pub dst: Area,
}

/// The window, the desktop and the scroll position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewport {
    /// Fit or 1:1.
    pub mode: ScaleMode,
    /// Window width in physical pixels.
    pub window_w: u32,
    /// Window height in physical pixels.
    pub window_h: u32,
    /// Desktop width.
    pub frame_w: u32,
    /// Desktop height.
    pub frame_h: u32,
    /// 1:1 mode: desktop column shown at the window's left edge.
    pub scroll_x: u32,
    /// 1:1 mode: desktop row shown at the window's top edge.
    pub scroll_y: u32,
}

impl Viewport {
    /// A viewport with no scrolling.
    pub fn new(mode: ScaleMode, window: (u32, u32), frame: (u32, u32)) -> Viewport {
        Viewport {
            mode,
            window_w: window.0,
            window_h: window.1,
            frame_w: frame.0,
            frame_h: frame.1,
            scroll_x: 0,
            scroll_y: 0,
        }
    }

    /// Changes the window size, keeping the scroll position valid.
    pub fn set_window(&mut self, w: u32, h: u32) {
        self.window_w = w;
        self.window_h = h;
        self.clamp_scroll();
    }

    /// Changes the desktop size, keeping the scroll position valid.
    pub fn set_frame(&mut self, w: u32, h: u32) {
        self.frame_w = w;
        self.frame_h = h;
        self.clamp_scroll();
    }

    /// Switches between fit and 1:1.
    pub fn set_mode(&mut self, mode: ScaleMode) {
        self.mode = mode;
        self.clamp_scroll();
    }

    /// Largest scroll position on each axis (0 when everything is visible).
    pub fn max_scroll(&self) -> (u32, u32) {
        match self.mode {
            ScaleMode::Fit => (0, 0),
            ScaleMode::OneToOne => (
                self.frame_w.saturating_sub(self.window_w),
                self.frame_h.saturating_sub(self.window_h),
            ),
        }
    }

    /// Scrolls by a number of desktop pixels (1:1 mode), clamped.
    pub fn scroll_by(&mut self, dx: i64, dy: i64) {
        let (mx, my) = self.max_scroll();
        self.scroll_x = (i64::from(self.scroll_x) + dx).clamp(0, i64::from(mx)) as u32;
        self.scroll_y = (i64::from(self.scroll_y) + dy).clamp(0, i64::from(my)) as u32;
    }

    fn clamp_scroll(&mut self) {
        let (mx, my) = self.max_scroll();
        self.scroll_x = self.scroll_x.min(mx);
        self.scroll_y = self.scroll_y.min(my);
    }

    /// Whether there is anything to draw.
    pub fn is_empty(&self) -> bool {
        self.window_w == 0 || self.window_h == 0 || self.frame_w == 0 || self.frame_h == 0
    }

    /// What is drawn where. Empty areas when there is nothing to draw.
    pub fn placement(&self) -> Placement {
        if self.is_empty() {
            return Placement::default();
        }
        match self.mode {
            ScaleMode::Fit => {
                // Integer arithmetic: the desktop fills the window along the
                // axis that limits it, exactly, and the other axis is
                // rounded to the nearest pixel.
                let (fw, fh) = (u64::from(self.frame_w), u64::from(self.frame_h));
                let (ww, wh) = (u64::from(self.window_w), u64::from(self.window_h));
                let (w, h) = if ww * fh <= wh * fw {
                    (ww, ((ww * fh + fw / 2) / fw).clamp(1, wh))
                } else {
                    (((wh * fw + fh / 2) / fh).clamp(1, ww), wh)
                };
                let (w, h) = (w as u32, h as u32);
                Placement {
                    src: Area {
                        x: 0,
                        y: 0,
                        w: self.frame_w,
                        h: self.frame_h,
                    },
                    dst: Area {
                        x: (self.window_w - w) / 2,
                        y: (self.window_h - h) / 2,
                        w,
                        h,
                    },
                }
            }
            ScaleMode::OneToOne => {
                let axis = |window: u32, frame: u32, scroll: u32| {
                    if window >= frame {
                        // (src offset, dst offset, length): centred.
                        (0, (window - frame) / 2, frame)
                    } else {
                        (scroll.min(frame - window), 0, window)
                    }
                };
                let (sx, dx, w) = axis(self.window_w, self.frame_w, self.scroll_x);
                let (sy, dy, h) = axis(self.window_h, self.frame_h, self.scroll_y);
                Placement {
                    src: Area { x: sx, y: sy, w, h },
                    dst: Area { x: dx, y: dy, w, h },
                }
            }
        }
    }

    /// The desktop pixel under a window point, `None` outside the drawn
    /// desktop. Consistent with drawing: window pixel column `c` of the
    /// drawn area shows desktop columns from `c * src.w / dst.w`, and a
    /// point inside it maps to that first column.
    pub fn window_to_frame(&self, wx: f64, wy: f64) -> Option<(u32, u32)> {
        let p = self.placement();
        if p.dst.w == 0 || p.dst.h == 0 || !wx.is_finite() || !wy.is_finite() {
            return None;
        }
        let (rx, ry) = (
            wx.floor() - f64::from(p.dst.x),
            wy.floor() - f64::from(p.dst.y),
        );
        if rx < 0.0 || ry < 0.0 || rx >= f64::from(p.dst.w) || ry >= f64::from(p.dst.h) {
            return None;
        }
        Some(map_in(p, rx as u32, ry as u32))
    }

    /// Like [`window_to_frame`](Self::window_to_frame) but a point outside
    /// the drawn desktop is moved to its nearest edge (for drags that leave
    /// the picture). `None` only when nothing is drawn.
    pub fn window_to_frame_clamped(&self, wx: f64, wy: f64) -> Option<(u32, u32)> {
        let p = self.placement();
        if p.dst.w == 0 || p.dst.h == 0 || !wx.is_finite() || !wy.is_finite() {
            return None;
        }
        let rx = (wx.floor() - f64::from(p.dst.x)).clamp(0.0, f64::from(p.dst.w - 1));
        let ry = (wy.floor() - f64::from(p.dst.y)).clamp(0.0, f64::from(p.dst.h - 1));
        Some(map_in(p, rx as u32, ry as u32))
    }

    /// The window point where a desktop point is drawn (may lie outside
    /// the window when scrolled away).
    pub fn frame_to_window(&self, fx: f64, fy: f64) -> (f64, f64) {
        let p = self.placement();
        if p.src.w == 0 || p.src.h == 0 {
            return (f64::NAN, f64::NAN);
        }
        (
            f64::from(p.dst.x)
                + (fx - f64::from(p.src.x)) * f64::from(p.dst.w) / f64::from(p.src.w),
            f64::from(p.dst.y)
                + (fy - f64::from(p.src.y)) * f64::from(p.dst.h) / f64::from(p.src.h),
        )
    }

    /// Desktop pixels per window pixel along x (1 at 1:1).
    pub fn scale(&self) -> f64 {
        let p = self.placement();
        if p.src.w == 0 {
            1.0
        } else {
            f64::from(p.dst.w) / f64::from(p.src.w)
        }
    }
}

/// Window pixel `(rx, ry)` relative to the drawn area -> desktop pixel.
fn map_in(p: Placement, rx: u32, ry: u32) -> (u32, u32) {
    let fx = u64::from(rx) * u64::from(p.src.w) / u64::from(p.dst.w);
    let fy = u64::from(ry) * u64::from(p.src.h) / u64::from(p.dst.h);
    (p.src.x + fx as u32, p.src.y + fy as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fit_keeps_the_aspect_ratio_and_centres() {
        let v = Viewport::new(ScaleMode::Fit, (800, 800), (400, 200));
        let p = v.placement();
        assert_eq!(
            p.dst,
            Area {
                x: 0,
                y: 200,
                w: 800,
                h: 400
            }
        );
        assert_eq!(v.window_to_frame(0.0, 199.0), None);
        assert_eq!(v.window_to_frame(0.0, 200.0), Some((0, 0)));
        assert_eq!(v.window_to_frame(201.5, 301.0), Some((100, 50)));
        assert_eq!(v.window_to_frame(799.9, 599.9), Some((399, 199)));
        assert_eq!(v.window_to_frame(799.9, 600.0), None);
        assert_eq!(v.window_to_frame_clamped(900.0, 900.0), Some((399, 199)));
        assert_eq!(v.frame_to_window(100.0, 50.0), (200.0, 300.0));

        // Same size: the identity.
        let v = Viewport::new(ScaleMode::Fit, (333, 201), (333, 201));
        assert_eq!(v.placement().dst, v.placement().src);
        assert_eq!(v.window_to_frame(332.0, 200.0), Some((332, 200)));
    }

    #[test]
    fn one_to_one_scrolls_and_centres() {
        let mut v = Viewport::new(ScaleMode::OneToOne, (300, 100), (200, 400));
        // Wider window: centred horizontally; shorter: scrolled vertically.
        let p = v.placement();
        assert_eq!((p.dst.x, p.dst.w, p.src.x), (50, 200, 0));
        assert_eq!((p.dst.y, p.dst.h, p.src.y), (0, 100, 0));
        v.scroll_by(0, 1000);
        assert_eq!(v.scroll_y, 300);
        assert_eq!(v.window_to_frame(50.0, 0.0), Some((0, 300)));
        assert_eq!(v.window_to_frame(49.0, 0.0), None);
        v.set_window(300, 350);
        assert_eq!(v.scroll_y, 50, "scroll clamped when the window grows");
        v.set_mode(ScaleMode::Fit);
        assert_eq!((v.scroll_x, v.scroll_y), (0, 0));
    }

    #[test]
    fn empty_viewports_map_nothing() {
        let v = Viewport::new(ScaleMode::Fit, (0, 10), (10, 10));
        assert_eq!(v.placement(), Placement::default());
        assert_eq!(v.window_to_frame(1.0, 1.0), None);
        let v = Viewport::new(ScaleMode::Fit, (10, 10), (0, 0));
        assert_eq!(v.window_to_frame_clamped(1.0, 1.0), None);
    }

    proptest! {
        #[test]
        fn every_window_point_maps_inside_the_desktop(
            ww in 1u32..3000, wh in 1u32..3000, fw in 1u32..5000, fh in 1u32..5000,
            one in any::<bool>(), px in 0.0f64..3000.0, py in 0.0f64..3000.0,
            sx in 0u32..5000, sy in 0u32..5000,
        ) {
            let mode = if one { ScaleMode::OneToOne } else { ScaleMode::Fit };
            let mut v = Viewport::new(mode, (ww, wh), (fw, fh));
            v.scroll_by(i64::from(sx), i64::from(sy));
            let p = v.placement();
            prop_assert!(p.dst.w >= 1 && p.dst.h >= 1);
            prop_assert!(p.dst.x + p.dst.w <= ww && p.dst.y + p.dst.h <= wh);
            prop_assert!(p.src.x + p.src.w <= fw && p.src.y + p.src.h <= fh);
            if let Some((x, y)) = v.window_to_frame(px, py) {
                prop_assert!(x < fw && y < fh);
                // The drawn point of that desktop pixel is at or before the
                // window point, less than one window pixel per desktop pixel away.
                let (bx, by) = v.frame_to_window(f64::from(x), f64::from(y));
                prop_assert!(bx <= px.floor() + 1e-6 && by <= py.floor() + 1e-6);
            }
            let c = v.window_to_frame_clamped(px, py).unwrap();
            prop_assert!(c.0 < fw && c.1 < fh);
        }
    }
}
