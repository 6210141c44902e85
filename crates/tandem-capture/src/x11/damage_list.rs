//! The damage list between two grabs: the X server reports every drawing
//! as its own rectangle (`RawRectangles`), and a typed character is three
//! or four of them over two adjacent character cells, some repeated. Each
//! area of the list costs one shared-memory round trip to the server at the
//! grab, so rectangles that overlap, touch or lie close are kept as one
//! when their bounding box wastes little; the list stays bounded.

use tandem_codec::Rect;

/// Most damaged areas kept between two grabs; beyond this they are folded
/// into their bounding box.
pub(super) const MAX_DAMAGE_RECTS: usize = 32;

/// Pixels that two areas' bounding box may hold beyond the two areas for
/// them to be kept as one: a 64x64 tile's worth, which costs less to read
/// and compare than a round trip to the X server.
const MERGE_SLACK_PIXELS: u64 = 64 * 64;

/// Adds `rect` to `list`, merged with every area it is kept as one with.
pub(super) fn add(list: &mut Vec<Rect>, rect: Rect) {
    let mut rect = rect;
    // A merged area may now be close to another one: merge until none is.
    while let Some(i) = list.iter().position(|r| worth_merging(r, &rect)) {
        rect = bounding_box(&[list.swap_remove(i), rect]);
    }
    list.push(rect);
    if list.len() > MAX_DAMAGE_RECTS {
        let bbox = bounding_box(list);
        list.clear();
        list.push(bbox);
    }
}

/// Whether the bounding box of `a` and `b` wastes at most
/// [`MERGE_SLACK_PIXELS`] beyond what the two cover.
fn worth_merging(a: &Rect, b: &Rect) -> bool {
    let covered = a.area() + b.area() - a.intersect(b).map_or(0, |o| o.area());
    bounding_box(&[*a, *b]).area() <= covered + MERGE_SLACK_PIXELS
}

/// The smallest rectangle holding all of `rects` (empty for none).
pub(super) fn bounding_box(rects: &[Rect]) -> Rect {
    let x0 = rects.iter().map(|r| r.x).min().unwrap_or(0);
    let y0 = rects.iter().map(|r| r.y).min().unwrap_or(0);
    let x1 = rects.iter().map(|r| r.x + r.width).max().unwrap_or(0);
    let y1 = rects.iter().map(|r| r.y + r.height).max().unwrap_or(0);
    Rect::new(x0, y0, x1 - x0, y1 - y0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(rects: &[Rect]) -> Vec<Rect> {
        let mut list = Vec::new();
        for r in rects {
            add(&mut list, *r);
        }
        list
    }

    #[test]
    fn a_typed_characters_drawings_are_one_area() {
        // What Xvfb reported for one key typed into an xterm: the glyph's
        // cell twice, the text cursor inside it, then the next cell.
        let list = list_of(&[
            Rect::new(275, 43, 8, 17),
            Rect::new(275, 43, 8, 17),
            Rect::new(275, 48, 8, 8),
            Rect::new(283, 43, 8, 17),
        ]);
        assert_eq!(list, vec![Rect::new(275, 43, 16, 17)]);
    }

    #[test]
    fn distant_areas_stay_apart() {
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(1000, 500, 100, 100);
        assert_eq!(list_of(&[a, b]), vec![a, b]);
    }

    #[test]
    fn an_area_that_joins_two_others_merges_all_three() {
        // Apart, the two strips waste too much; the area between them
        // fills the gap.
        let left = Rect::new(0, 0, 100, 50);
        let right = Rect::new(200, 0, 100, 50);
        let middle = Rect::new(100, 0, 100, 50);
        assert_eq!(list_of(&[left, right]).len(), 2);
        assert_eq!(
            list_of(&[left, right, middle]),
            vec![Rect::new(0, 0, 300, 50)]
        );
    }

    #[test]
    fn the_list_is_bounded_by_its_bounding_box() {
        let scattered: Vec<Rect> = (0..(MAX_DAMAGE_RECTS as u32 + 1))
            .map(|i| Rect::new(i * 1000, (i % 2) * 900, 10, 10))
            .collect();
        let list = list_of(&scattered);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0], bounding_box(&scattered));
    }

    #[test]
    fn what_the_list_covers_is_what_was_added() {
        // Every added pixel is covered, whatever the order of merges.
        let rects = [
            Rect::new(10, 10, 30, 5),
            Rect::new(600, 400, 50, 50),
            Rect::new(35, 12, 40, 40),
            Rect::new(5, 60, 20, 20),
            Rect::new(640, 430, 5, 100),
        ];
        let list = list_of(&rects);
        for r in rects {
            for (x, y) in [(r.x, r.y), (r.x + r.width - 1, r.y + r.height - 1)] {
                assert!(
                    list.iter()
                        .any(|l| l.intersect(&Rect::new(x, y, 1, 1)).is_some()),
                    "({x}, {y}) of {r:?} is not in {list:?}"
                );
            }
        }
    }
}
