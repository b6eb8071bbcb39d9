//! Seeded synthetic degradations of our own rendered tokens: the corpus generator behind the
//! readability benchmark (`rx-readability`) and the photo tests.
//!
//! Each function models one physical effect with plain pixel math (plus imageproc for warps and
//! blur); all randomness comes from the caller's seeded RNG, so a corpus is reproducible.

use std::io::Cursor;

use image::{GrayImage, Luma};
use imageproc::drawing::{draw_filled_ellipse_mut, draw_filled_rect_mut};
use imageproc::geometric_transformations::{Interpolation, Projection, warp_into};
use imageproc::rect::Rect;
use rand::Rng;

use crate::PrescriptionId;
use crate::render::{
    Code128Symbol, Dpi, Orientation, RenderError, TokenSheet, datamatrix_modules,
    matrix_dots_per_module,
};
use crate::token::TokenText;

/// A rectangle `(x, y, width, height)` in pixels.
pub type Area = (u32, u32, u32, u32);

/// Both codes of a token side by side (vertical Code 128 left, Data Matrix right) with 8 mm
/// margins, and where each symbol lies.
#[derive(Debug, Clone)]
pub struct Label {
    pub image: GrayImage,
    pub code128: Area,
    pub matrix: Area,
    pub dpi: Dpi,
}

/// Draws a label at `dpi`, by default with the production module sizes; `code128_dots` and
/// `matrix_dots` override the dots per module (the benchmark's module-size sweep).
pub fn label(
    id: &PrescriptionId,
    token: &TokenText,
    dpi: Dpi,
    code128_dots: Option<u32>,
    matrix_dots: Option<u32>,
) -> Result<Label, RenderError> {
    let mut code128 = Code128Symbol::for_id(id, dpi)?;
    if let Some(dots) = code128_dots {
        code128.layout.dots_per_module = dots;
    }
    let bars = code128.to_image(Orientation::Vertical);
    let matrix = datamatrix_modules(token)?
        .to_image(matrix_dots.unwrap_or_else(|| matrix_dots_per_module(dpi)));
    let gap = (f64::from(dpi.get()) * 8.0 / 25.4).round() as u32;
    let width = gap + bars.width() + gap + matrix.width() + gap;
    let height = gap + bars.height().max(matrix.height()) + gap;
    let mut image = GrayImage::from_pixel(width, height, Luma([255]));
    image::imageops::replace(&mut image, &bars, i64::from(gap), i64::from(gap));
    let matrix_x = 2 * gap + bars.width();
    image::imageops::replace(&mut image, &matrix, i64::from(matrix_x), i64::from(gap));
    Ok(Label {
        code128: (gap, gap, bars.width(), bars.height()),
        matrix: (matrix_x, gap, matrix.width(), matrix.height()),
        image,
        dpi,
    })
}

/// A label on a larger white sheet with text-like clutter right of and below it (the label
/// keeps its position at the top left, so its areas stay valid).
pub fn sheet_image<R: Rng>(label: &Label, rng: &mut R) -> GrayImage {
    let dpi = f64::from(label.dpi.get());
    let mm = |v: f64| (v * dpi / 25.4).round() as u32;
    let (lw, lh) = label.image.dimensions();
    let (w, h) = (lw + mm(60.0), lh + mm(30.0));
    let mut page = GrayImage::from_pixel(w, h, Luma([255]));
    image::imageops::replace(&mut page, &label.image, 0, 0);
    draw_text_lines(
        &mut page,
        lw + mm(2.0),
        mm(10.0),
        mm(55.0),
        lh,
        mm(2.5),
        rng,
    );
    draw_text_lines(
        &mut page,
        mm(8.0),
        lh + mm(2.0),
        w - mm(10.0),
        mm(25.0),
        mm(2.5),
        rng,
    );
    page
}

/// [`sheet_image`] of the production label for `sheet`.
pub fn token_sheet_image<R: Rng>(sheet: &TokenSheet, rng: &mut R) -> GrayImage {
    match label(&sheet.id, &sheet.token, sheet.dpi, None, None) {
        Ok(label) => sheet_image(&label, rng),
        Err(_) => GrayImage::from_pixel(1, 1, Luma([255])),
    }
}

/// Rows of short dark strokes that look like printed words to a barcode detector.
pub fn draw_text_lines<R: Rng>(
    page: &mut GrayImage,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
    line_height: u32,
    rng: &mut R,
) {
    let line_height = line_height.max(4);
    let glyph = (line_height * 2 / 3).max(2);
    let mut y = top;
    while y + line_height <= top + height && y + line_height < page.height() {
        let mut x = left;
        let line_end = left + rng.gen_range(width / 2..=width.max(1));
        while x < line_end && x + glyph < page.width() {
            let word = rng.gen_range(2..9);
            for _ in 0..word {
                let stroke = (glyph / 4).max(1);
                let shape = rng.gen_range(0..3);
                let rect = match shape {
                    0 => Rect::at(x as i32, y as i32).of_size(stroke, glyph),
                    1 => Rect::at(x as i32, (y + glyph - stroke) as i32).of_size(glyph, stroke),
                    _ => Rect::at(x as i32, (y + glyph / 2) as i32).of_size(glyph, stroke),
                };
                draw_filled_rect_mut(page, rect, Luma([30]));
                x += glyph * 3 / 4;
            }
            x += glyph;
        }
        y += line_height * 3 / 2;
    }
}

/// Ink spread (positive `dots`) or erosion (negative): every dark edge moves outwards or inwards
/// by about that many printer dots (use fractions: toner and thermal paper move edges by a
/// fraction of a dot). Blur, then a shifted threshold: the result is a clean binary print.
pub fn ink_spread(image: &GrayImage, dots: f32) -> GrayImage {
    if dots == 0.0 {
        return image.clone();
    }
    // A narrow blur keeps two-dot bars intact; across its edges the level changes by ~200 per
    // pixel, so shifting the threshold by 200 × dots moves each edge by `dots` pixels.
    let blurred = imageproc::filter::gaussian_blur_f32(image, 0.5);
    let threshold = (128.0 + 200.0 * dots).clamp(10.0, 245.0);
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        Luma([if f32::from(blurred.get_pixel(x, y).0[0]) < threshold {
            0
        } else {
            255
        }])
    })
}

/// Dead thermal print-head elements: whole dot columns left white.
pub fn missing_dot_columns<R: Rng>(image: &GrayImage, count: u32, rng: &mut R) -> GrayImage {
    let mut out = image.clone();
    for _ in 0..count {
        let x = rng.gen_range(0..out.width());
        for y in 0..out.height() {
            out.put_pixel(x, y, Luma([255]));
        }
    }
    out
}

/// Dead thermal print-head elements inside bars: `count` dot columns chosen among the darkest
/// (those running along a bar), left white for the whole label.
pub fn dead_elements_in_bars<R: Rng>(image: &GrayImage, count: u32, rng: &mut R) -> GrayImage {
    let dark_per_column: Vec<u32> = (0..image.width())
        .map(|x| {
            (0..image.height())
                .filter(|&y| image.get_pixel(x, y).0[0] < 128)
                .count() as u32
        })
        .collect();
    let most = dark_per_column.iter().copied().max().unwrap_or(0);
    let inside: Vec<u32> = (0..image.width())
        .filter(|&x| most > 0 && dark_per_column[x as usize] * 2 >= most)
        .collect();
    let mut out = image.clone();
    for _ in 0..count {
        let x = if inside.is_empty() {
            rng.gen_range(0..out.width())
        } else {
            inside[rng.gen_range(0..inside.len())]
        };
        for y in 0..out.height() {
            out.put_pixel(x, y, Luma([255]));
        }
    }
    out
}

/// A code shown on a phone screen: every image pixel becomes a `pitch`×`pitch` block of screen
/// pixels with dark gaps between them (the pixel grid a camera turns into moiré). In dark mode
/// the code is light on a dark background.
pub fn screen(image: &GrayImage, pitch: u32, dark_mode: bool) -> GrayImage {
    let pitch = pitch.max(2);
    GrayImage::from_fn(image.width() * pitch, image.height() * pitch, |x, y| {
        let v = u32::from(image.get_pixel(x / pitch, y / pitch).0[0]);
        let lit = if dark_mode { 235 - v * 7 / 10 } else { v };
        let gap = x % pitch == pitch - 1 || y % pitch == pitch - 1;
        Luma([if gap { lit / 3 } else { lit } as u8])
    })
}

/// A specular reflection: a bright blob washing out part of the image.
pub fn glare<R: Rng>(image: &GrayImage, rng: &mut R) -> GrayImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (cx, cy) = (rng.gen_range(0.2..0.8) * w, rng.gen_range(0.2..0.8) * h);
    let radius = rng.gen_range(0.08..0.2) * w.max(h);
    let strength = rng.gen_range(0.5..0.9);
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let d2 = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / (radius * radius);
        let v = f32::from(image.get_pixel(x, y).0[0]);
        Luma([(v + (255.0 - v) * strength * (-d2).exp()).min(255.0) as u8])
    })
}

/// Resamples from one resolution to another (printer dots → scanner pixels).
pub fn resample(image: &GrayImage, from: Dpi, to: Dpi) -> GrayImage {
    let scale = f64::from(to.get()) / f64::from(from.get());
    let w = ((f64::from(image.width()) * scale).round() as u32).max(1);
    let h = ((f64::from(image.height()) * scale).round() as u32).max(1);
    image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle)
}

/// Rotation by `degrees` about the centre on a canvas that keeps every corner, filled with
/// `background`.
pub fn rotate(image: &GrayImage, degrees: f32, background: u8) -> GrayImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (image.width() as f32, image.height() as f32);
    let out_w = (w * cos.abs() + h * sin.abs()).ceil().max(1.0) as u32;
    let out_h = (w * sin.abs() + h * cos.abs()).ceil().max(1.0) as u32;
    let projection = Projection::translate(out_w as f32 / 2.0, out_h as f32 / 2.0)
        * Projection::rotate(degrees.to_radians())
        * Projection::translate(-w / 2.0, -h / 2.0);
    let mut out = GrayImage::new(out_w, out_h);
    warp_into(
        image,
        &projection,
        Interpolation::Bilinear,
        Luma([background]),
        &mut out,
    );
    out
}

/// A camera view of `image`: tilted by `tilt_degrees` about a random axis in the paper plane
/// (perspective), turned by `rotation_degrees`, placed on a darker desk background in a
/// `width`×`height` frame at `scale` frame pixels per image pixel (at the paper's centre).
#[allow(clippy::too_many_arguments)]
pub fn camera_view<R: Rng>(
    image: &GrayImage,
    tilt_degrees: f32,
    rotation_degrees: f32,
    width: u32,
    height: u32,
    scale: f32,
    desk: u8,
    rng: &mut R,
) -> GrayImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    // Paper corners, centred at the origin.
    let corners = [
        (-w / 2.0, -h / 2.0),
        (w / 2.0, -h / 2.0),
        (w / 2.0, h / 2.0),
        (-w / 2.0, h / 2.0),
    ];
    // Tilt: rotate the paper plane about an in-plane axis and project with a pinhole camera
    // whose distance is ~1.6 paper diagonals (a typical phone at arm's length).
    let axis = rng.gen_range(0.0..std::f32::consts::PI);
    let tilt = tilt_degrees.to_radians();
    let (ax, ay) = (axis.cos(), axis.sin());
    let distance = 1.6 * (w * w + h * h).sqrt();
    let (rs, rc) = rotation_degrees.to_radians().sin_cos();
    let projected = corners.map(|(x, y)| {
        // Component along the axis stays; the perpendicular component tilts out of the plane.
        let along = x * ax + y * ay;
        let (px, py) = (x - along * ax, y - along * ay);
        let across = (px * px + py * py).sqrt() * (px * -ay + py * ax).signum();
        let depth = across * tilt.sin();
        let flat = across * tilt.cos();
        let (x3, y3) = (along * ax + flat * -ay, along * ay + flat * ax);
        let perspective = distance / (distance + depth);
        let (x2, y2) = (x3 * perspective, y3 * perspective);
        let (xr, yr) = (x2 * rc - y2 * rs, x2 * rs + y2 * rc);
        (
            width as f32 / 2.0 + xr * scale,
            height as f32 / 2.0 + yr * scale,
        )
    });
    let source = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let mut out = GrayImage::from_pixel(width, height, Luma([desk]));
    if let Some(projection) = Projection::from_control_points(source, projected) {
        warp_into(
            image,
            &projection,
            Interpolation::Bilinear,
            Luma([desk]),
            &mut out,
        );
    }
    out
}

/// Defocus: Gaussian blur with standard deviation `sigma` pixels.
pub fn defocus(image: &GrayImage, sigma: f32) -> GrayImage {
    if sigma <= 0.0 {
        image.clone()
    } else {
        imageproc::filter::gaussian_blur_f32(image, sigma)
    }
}

/// Motion blur: the mean along a line of `length` pixels at `degrees`.
pub fn motion_blur(image: &GrayImage, length: u32, degrees: f32) -> GrayImage {
    if length < 2 {
        return image.clone();
    }
    let (sin, cos) = degrees.to_radians().sin_cos();
    let offsets: Vec<(i64, i64)> = (0..length)
        .map(|i| {
            let t = i as f32 - (length - 1) as f32 / 2.0;
            ((t * cos).round() as i64, (t * sin).round() as i64)
        })
        .collect();
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let sum: u32 = offsets
            .iter()
            .map(|(dx, dy)| {
                let sx = (i64::from(x) + dx).clamp(0, w - 1) as u32;
                let sy = (i64::from(y) + dy).clamp(0, h - 1) as u32;
                u32::from(image.get_pixel(sx, sy).0[0])
            })
            .sum();
        Luma([(sum / offsets.len() as u32) as u8])
    })
}

/// Uneven light: brightness falls linearly across the frame in a random direction from 1 to
/// `darkest` (0..1).
pub fn uneven_light<R: Rng>(image: &GrayImage, darkest: f32, rng: &mut R) -> GrayImage {
    let angle = rng.gen_range(0.0..std::f32::consts::TAU);
    let (dx, dy) = (angle.cos(), angle.sin());
    let (w, h) = (image.width() as f32, image.height() as f32);
    let span = (w * dx.abs() + h * dy.abs()).max(1.0);
    let offset = if dx < 0.0 { -w * dx } else { 0.0 } + if dy < 0.0 { -h * dy } else { 0.0 };
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let t = ((x as f32 * dx + y as f32 * dy + offset) / span).clamp(0.0, 1.0);
        let gain = 1.0 - t * (1.0 - darkest);
        Luma([(f32::from(image.get_pixel(x, y).0[0]) * gain) as u8])
    })
}

/// Additive Gaussian-like sensor or paper noise with standard deviation `sigma` grey levels.
pub fn noise<R: Rng>(image: &GrayImage, sigma: f32, rng: &mut R) -> GrayImage {
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        // Sum of 4 uniforms: close enough to Gaussian for sensor noise.
        let n: f32 = (0..4).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>() * sigma * 0.866;
        Luma([(f32::from(image.get_pixel(x, y).0[0]) + n).clamp(0.0, 255.0) as u8])
    })
}

/// Faded print on off-white paper: ink and paper `contrast` (0..1) apart.
pub fn fade(image: &GrayImage, contrast: f32, paper: u8) -> GrayImage {
    let paper = f32::from(paper);
    let ink = (paper - contrast * 255.0).max(0.0);
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let v = f32::from(image.get_pixel(x, y).0[0]) / 255.0;
        Luma([(ink + v * (paper - ink)) as u8])
    })
}

/// A fold: a thin band across the sheet, darker with a lighter edge, and a one-pixel shift of
/// everything past it.
pub fn crease<R: Rng>(image: &GrayImage, rng: &mut R) -> GrayImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let angle = rng.gen_range(-0.6f32..0.6) + if rng.gen_bool(0.5) { 0.0 } else { 1.57 };
    let (nx, ny) = (angle.cos(), angle.sin());
    let c = rng.gen_range(0.3..0.7) * (w * nx.abs() + h * ny.abs());
    let width = (w.min(h) / 150.0).max(1.5);
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let d = x as f32 * nx.abs() + y as f32 * ny.abs() - c;
        let (sx, sy) = if d > 0.0 {
            (x.saturating_sub(1), y)
        } else {
            (x, y)
        };
        let v = f32::from(image.get_pixel(sx, sy).0[0]);
        let shade = if d.abs() < width {
            0.7
        } else if d > 0.0 && d < 2.0 * width {
            1.08
        } else {
            1.0
        };
        Luma([(v * shade).clamp(0.0, 255.0) as u8])
    })
}

/// Stains: a few translucent darker blotches.
pub fn stains<R: Rng>(image: &GrayImage, count: u32, rng: &mut R) -> GrayImage {
    let mut mask = GrayImage::from_pixel(image.width(), image.height(), Luma([255]));
    let scale = image.width().min(image.height()) as i32;
    for _ in 0..count {
        let center = (
            rng.gen_range(0..image.width() as i32),
            rng.gen_range(0..image.height() as i32),
        );
        let (rx, ry) = (
            rng.gen_range(scale / 30..scale / 8 + 2),
            rng.gen_range(scale / 30..scale / 8 + 2),
        );
        draw_filled_ellipse_mut(&mut mask, center, rx, ry, Luma([rng.gen_range(150..210)]));
    }
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let v = u32::from(image.get_pixel(x, y).0[0]);
        let m = u32::from(mask.get_pixel(x, y).0[0]);
        Luma([(v * m / 255) as u8])
    })
}

/// Covers `fraction` of the rectangle `area` (x, y, w, h) with a white or dark patch
/// (a sticker, a thumb, a torn corner).
pub fn occlude<R: Rng>(
    image: &GrayImage,
    area: (u32, u32, u32, u32),
    fraction: f32,
    rng: &mut R,
) -> GrayImage {
    let mut out = image.clone();
    let (ax, ay, aw, ah) = area;
    let side_w = ((aw as f32) * fraction.sqrt()).max(1.0) as u32;
    let side_h = ((ah as f32) * fraction.sqrt()).max(1.0) as u32;
    let x = ax + rng.gen_range(0..=aw.saturating_sub(side_w));
    let y = ay + rng.gen_range(0..=ah.saturating_sub(side_h));
    let colour = if rng.gen_bool(0.5) { 250 } else { 40 };
    draw_filled_rect_mut(
        &mut out,
        Rect::at(x as i32, y as i32).of_size(side_w, side_h),
        Luma([colour]),
    );
    out
}

/// JPEG compression round trip at `quality`.
pub fn jpeg(image: &GrayImage, quality: u8) -> GrayImage {
    jpeg_bytes(image, quality)
        .ok()
        .and_then(|bytes| image::load_from_memory(&bytes).ok())
        .map(|decoded| decoded.to_luma8())
        .unwrap_or_else(|| image.clone())
}

/// JPEG bytes at `quality`.
pub fn jpeg_bytes(image: &GrayImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(image)?;
    Ok(out.into_inner())
}
