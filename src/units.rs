//! Byte counts as borg writes them for people: `helpers/parseformat.py`'s `format_file_size`,
//! shared by the repository's messages (quota, free space, compaction) and the commands'
//! statistics.

/// borg's `format_file_size`: decimal units (`kB`, `MB`, … `YB`) or, with `iec`, binary ones
/// (`KiB`, `MiB`, … `YiB`); a plain count of bytes has no decimals (`523 B`), every larger
/// unit two (`1.23 kB`). The unit is chosen on the value rounded to two decimals, so 999 999
/// is `1.00 MB`; negative values keep their sign.
pub fn format_file_size(v: i128, iec: bool) -> String {
    let (units, power): (&[&str], f64) = if iec {
        (
            &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
            1024.0,
        )
    } else {
        (&["", "k", "M", "G", "T", "P", "E", "Z", "Y"], 1000.0)
    };
    let mut num = v as f64;
    let mut prec = 0;
    let mut unit = units[units.len() - 1];
    for u in &units[..units.len() - 1] {
        if (num * 100.0).round().abs() / 100.0 < power {
            unit = u;
            break;
        }
        num /= power;
        prec = 2;
    }
    format!("{num:.prec$} {unit}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sizes_match_borg() {
        // expected texts from borg 1.2.4's format_file_size
        for (v, text) in [
            (0, "0 B"),
            (523, "523 B"),
            (999, "999 B"),
            (1000, "1.00 kB"),
            (1234, "1.23 kB"),
            (999_999, "1.00 MB"),
            (20_971_520, "20.97 MB"),
            (123_456_789, "123.46 MB"),
            (999_994_999, "999.99 MB"),
            (500 * 10i128.pow(15), "500.00 PB"),
            (10i128.pow(27), "1000.00 YB"),
            (-999, "-999 B"),
            (-1234, "-1.23 kB"),
        ] {
            assert_eq!(format_file_size(v, false), text, "{v}");
        }
    }

    #[test]
    fn iec_sizes_match_borg() {
        for (v, text) in [
            (0, "0 B"),
            (1000, "1000 B"),
            (1024, "1.00 KiB"),
            (1234, "1.21 KiB"),
            (999_999, "976.56 KiB"),
            (20_971_520, "20.00 MiB"),
            (500 * 10i128.pow(15), "444.09 PiB"),
            (1i128 << 90, "1024.00 YiB"),
            (-1234, "-1.21 KiB"),
        ] {
            assert_eq!(format_file_size(v, true), text, "{v}");
        }
    }
}
