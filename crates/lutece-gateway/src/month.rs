//! Calendar months in UTC, the period of token budgets: when the current one began, when the
//! next begins. Civil-date arithmetic on days since the epoch (proleptic Gregorian calendar).

/// One calendar month (UTC), as seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    pub start_secs: i64,
    /// The first second of the next month.
    pub end_secs: i64,
}

impl Month {
    /// The month that holds `unix_secs`.
    pub fn containing(unix_secs: i64) -> Self {
        let (year, month, _) = civil_from_days(unix_secs.div_euclid(86_400));
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Self {
            year,
            month,
            start_secs: days_from_civil(year, month, 1) * 86_400,
            end_secs: days_from_civil(next_year, next_month, 1) * 86_400,
        }
    }

    /// The first day of the next month, as `YYYY-MM-DD`.
    pub fn next_start_date(&self) -> String {
        let (year, month, day) = civil_from_days(self.end_secs.div_euclid(86_400));
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date (year, month, day) of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_begin_and_end_on_the_right_days() {
        // 2026-11-29T18:50:04Z.
        let november = Month::containing(1_795_978_204);
        assert_eq!((november.year, november.month), (2026, 11));
        assert_eq!(november.start_secs, 1_793_491_200); // 2026-11-01
        assert_eq!(november.end_secs, 1_796_083_200); // 2026-12-01
        assert_eq!(november.next_start_date(), "2026-12-01");
        // December rolls over into the next year; leap Februaries have 29 days.
        let december = Month::containing(november.end_secs);
        assert_eq!((december.year, december.month), (2026, 12));
        assert_eq!(december.next_start_date(), "2027-01-01");
        let february = Month::containing(days_from_civil(2028, 2, 15) * 86_400);
        assert_eq!(february.end_secs - february.start_secs, 29 * 86_400);
        assert_eq!(Month::containing(0).start_secs, 0);
        assert_eq!(Month::containing(-1).next_start_date(), "1970-01-01");
    }

    #[test]
    fn civil_dates_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
