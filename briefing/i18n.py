"""Vietnamese and English: one translation table and the number/date conventions of each language.

Every label of the page comes from `TEXT` (written by hand, checked by a Vietnamese reader's eye, never
machine-translated at run time). Numbers follow each language's convention: Vietnamese writes
61,46 % and 4.816 (decimal comma, dot for thousands), English 61.46% and 4,816.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

LANGS = ("vi", "en")
NBSP = "\u00a0"  # keeps "61,46 %" and "45 phút" on one line
DASH = "–"  # shown for a figure with no data behind it

# key -> (Vietnamese, English). `{}` fields are filled with str.format.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("Bản tin sáng IOC", "IOC morning briefing"),
    "subtitle": ("Trung tâm Giám sát, điều hành thông minh tỉnh {}", "Intelligent Operations Center, {} province"),
    "figures_for": ("Số liệu ngày {}", "Figures for {}"),
    "compared_with": ("so với cùng kỳ tuần trước ({})", "compared with the same day a week earlier ({})"),
    "generated": ("Lập lúc {} từ ClickHouse", "Generated {} from ClickHouse"),
    "no_data_title": ("Không có dữ liệu cho ngày {}", "No data for {}"),
    "no_data_body": (
        "ClickHouse không có hồ sơ, lượt phục vụ hay số liệu mạng nào của ngày này. Hãy kiểm tra luồng dữ liệu "
        "(worker, Kafka) hoặc chọn ngày khác.",
        "ClickHouse holds no filings, tickets or network samples for this day. Check the pipeline (worker, Kafka) "
        "or choose another day.",
    ),
    # sections
    "sec_kpis": ("Chỉ số chính", "Key indicators"),
    "sec_hourly": ("Diễn biến theo giờ", "Hour by hour"),
    "sec_communes": ("Xã, phường chậm nhất", "Communes lagging most"),
    "sec_departments": ("Sở, ngành chậm nhất", "Departments lagging most"),
    "sec_communes_up": ("Xã, phường tiến bộ nhất", "Communes improved most"),
    "sec_departments_up": ("Sở, ngành tiến bộ nhất", "Departments improved most"),
    "sec_dossiers": ("Hồ sơ trễ hạn và sắp đến hạn", "Late dossiers and early warning"),
    "sec_hotspots": ("Điểm nóng tại Trung tâm Phục vụ hành chính công", "Service-center hot spots"),
    "sec_network": ("Sự cố mạng và SLA", "Network incidents and SLA"),
    "sec_day_incidents": ("Sự cố trong ngày", "Incidents of the day"),
    "sec_index": ("Chỉ số phục vụ người dân, doanh nghiệp (QĐ 766/QĐ-TTg)",
                  "Service index for citizens and businesses (Decision 766/QD-TTg)"),
    "index_day": ("Trong ngày", "The day"),
    "index_mtd": ("Từ đầu tháng", "Month to date"),
    "vs_week": ("so với cùng ngày tuần trước", "vs the same day a week before"),
    "vs_month": ("so với cùng kỳ tháng trước", "vs the same days of the month before"),
    "index_trend": ("{} ngày gần nhất", "Last {} days"),
    "index_lowest": ("Thấp nhất từ đầu tháng", "Lowest month to date"),
    "index_improved": ("Tiến bộ nhất so với tuần trước", "Improved most on the week before"),
    # KPIs
    "online_application": ("Nộp hồ sơ trực tuyến", "Online applications"),
    "online_payment": ("Thanh toán trực tuyến", "Online payment"),
    "digitisation": ("Số hóa hồ sơ", "Digitised dossiers"),
    "on_time": ("Giải quyết đúng hạn", "Processed on time"),
    "electronic_results": ("Trả kết quả điện tử", "Electronic results"),
    "data_reuse": ("Tái sử dụng dữ liệu số", "Reuse of digitised data"),
    "abandonment": ("Tỷ lệ bỏ về", "Tickets abandoned"),
    "mean_wait_min": ("Thời gian chờ trung bình", "Mean wait at a counter"),
    "availability": ("Độ khả dụng mạng", "Network availability"),
    "target": ("Mục tiêu", "Target"),
    "at_least": ("≥", "≥"),
    "at_most": ("≤", "≤"),
    "week_before": ("Tuần trước", "Week before"),
    "points": ("điểm", "pts"),
    "minutes": ("phút", "min"),
    "no_data": ("không có dữ liệu", "no data"),
    # volumes strip
    "dossiers_received": ("Hồ sơ tiếp nhận", "Dossiers received"),
    "dossiers_processed": ("Đã giải quyết", "Processed"),
    "dossiers_rejected": ("Trả lại", "Returned"),
    "tickets_issued": ("Lượt bốc số", "Tickets issued"),
    "wait_p90": ("Chờ p90", "Wait p90"),
    "outages": ("Số lần mất kết nối", "Outages"),
    # charts
    "chart_filings": ("Hồ sơ tiếp nhận theo giờ", "Dossiers received per hour"),
    "chart_wait": ("Thời gian chờ p90 theo giờ (phút)", "Wait p90 per hour (min)"),
    "chart_network": ("Độ khả dụng mạng theo giờ (%)", "Network availability per hour (%)"),
    "chart_incidents": ("Sự cố đang diễn ra theo giờ", "Incidents open per hour"),
    "online": ("trực tuyến", "online"),
    "in_person": ("trực tiếp", "in person"),
    # entity tables
    "col_name": ("Đơn vị", "Agency"),
    "col_dossiers": ("Hồ sơ", "Dossiers"),
    "col_online": ("Trực tuyến", "Online"),
    "col_on_time": ("Đúng hạn", "On time"),
    "col_gap": ("Thiếu hụt", "Gap"),
    "col_gap_before": ("Tuần trước", "Week before"),
    "col_gap_now": ("Hôm qua", "Yesterday"),
    "col_better": ("Cải thiện", "Better by"),
    "none_lagging": ("Không đơn vị nào dưới mục tiêu.", "No agency below target."),
    "none_improved": ("Không đơn vị nào cải thiện.", "No agency improved."),
    "no_comparison": ("Không có dữ liệu ngày {} để so sánh.", "No data for {} to compare with."),
    "gap_note": (
        "Thiếu hụt = số điểm % dưới mục tiêu của tỷ lệ nộp trực tuyến cộng tỷ lệ giải quyết đúng hạn; chỉ tính "
        "tỷ lệ có từ {} hồ sơ.",
        "Gap = percentage points below target in online applications plus on-time processing; a rate counts "
        "from {} dossiers.",
    ),
    # dossiers
    "processed_late": ("Giải quyết trễ hạn trong ngày", "Processed late during the day"),
    "became_overdue": ("Quá hạn trong ngày, chưa giải quyết", "Fell due during the day, still open"),
    "due_soon": ("Đến hạn trong 24 giờ tới", "Due within the next 24 h"),
    "col_processed_late": ("Trễ", "Late"),
    "col_overdue": ("Quá hạn", "Overdue"),
    "col_due_soon": ("≤ 24 giờ", "≤ 24 h"),
    "none_late": ("Không có hồ sơ trễ hạn hay sắp đến hạn.", "No late dossiers and none falling due."),
    # service centers
    "col_center": ("Trung tâm", "Center"),
    "col_tickets": ("Lượt", "Tickets"),
    "col_wait_p90": ("Chờ p90", "Wait p90"),
    "col_abandoned": ("Bỏ về", "Abandoned"),
    "center_en_province": ("", "{} provincial service center"),
    "center_en_commune": ("", "{} service center"),
    # network
    "col_node": ("Nút mạng", "Node"),
    "col_kind": ("Sự cố", "Incident"),
    "col_start": ("Bắt đầu", "Start"),
    "col_duration": ("Thời lượng", "Duration"),
    "col_affected": ("Ảnh hưởng", "Affected"),
    "col_day_availability": ("Khả dụng cả ngày", "Day availability"),
    "kind_outage": ("Mất kết nối", "Link down"),
    "kind_degraded": ("Suy giảm (mất gói)", "Degraded (packet loss)"),
    "whole_province": ("toàn tỉnh", "the whole province"),
    "sla_line": (
        "SLA độ khả dụng {}: {}/{} nút đạt; toàn mạng đạt {}.",
        "Availability SLA {}: {} of {} nodes met it; network-wide availability {}.",
    ),
    "below_sla": ("Dưới SLA: {}.", "Below SLA: {}."),
    "no_incidents": ("Không có sự cố mạng.", "No network incidents."),
    "more_incidents": ("Và {} sự cố khác không liệt kê.", "And {} more incidents not listed."),
    # incidents of the day
    "col_severity": ("Mức độ", "Severity"),
    "col_incident": ("Sự cố", "Incident"),
    "col_time": ("Thời gian", "Time"),
    "col_impact": ("Ảnh hưởng", "Impact"),
    "col_detected": ("Phát hiện sau", "Detected after"),
    "impact": ("{} đối tượng, {} xã", "{} subjects, {} communes"),
    "still_open": ("chưa xử lý xong", "still open"),
    "no_day_incidents": ("Không có sự cố.", "No incidents."),
    "incidents_total": ("Tổng: {} sự cố ({} nghiêm trọng), cộng dồn {} giờ.",
                        "Total: {} incidents ({} critical), {} h in all."),
    "critical": ("Nghiêm trọng", "Critical"),
    "warning": ("Cảnh báo", "Warning"),
    "info": ("Thông tin", "Info"),
    "rule_availability_low": ("Độ khả dụng dưới mục tiêu", "Availability below target"),
    "rule_node_outage": ("Mất kết nối nút mạng", "Node outage"),
    "rule_loss_high": ("Tỷ lệ mất gói cao", "High packet loss"),
    "rule_latency_p50_anomaly": ("Độ trễ mạng bất thường", "Unusual network latency"),
    "rule_issued_anomaly": ("Lượng bốc số bất thường", "Unusual ticket volume"),
    "rule_wait_p90_high": ("Thời gian chờ p90 vượt ngưỡng", "Wait p90 above limit"),
    "rule_online_share_low": ("Tỷ lệ trực tuyến thấp", "Low online share"),
    "rule_deadline_warning": ("Hồ sơ sắp đến hạn (24 giờ)", "Dossier due within 24 h"),
    "rule_deadline_missed": ("Hồ sơ quá hạn", "Dossier past due"),
    "footer": (
        "Nguồn: bảng ClickHouse daily_*, agg_*, raw_filings, network_outages, incidents (đã khử trùng lặp). "
        "Ngày theo giờ Việt Nam (UTC+7). Mục tiêu: kịch bản {}.",
        "Source: ClickHouse tables daily_*, agg_*, raw_filings, network_outages, incidents (deduplicated). "
        "Days are Vietnam local days (UTC+7). Targets: scenario {}.",
    ),
}

WEEKDAYS = (
    ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"),
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
)
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")


@dataclass(frozen=True)
class Lang:
    """Labels and number/date formatting of one language."""

    code: str

    def __post_init__(self) -> None:
        if self.code not in LANGS:
            raise ValueError(f"unknown language {self.code!r} (choose {' or '.join(LANGS)})")

    @property
    def _i(self) -> int:
        return LANGS.index(self.code)

    def t(self, key: str, *args: object) -> str:
        text = TEXT[key][self._i]
        return text.format(*args) if args else text

    def rule(self, rule: str) -> str:
        """An alert rule's label; a rule the table does not know yet shows under its own name."""
        key = f"rule_{rule}"
        return self.t(key) if key in TEXT else rule

    def severity(self, severity: str) -> str:
        return self.t(severity) if severity in ("critical", "warning", "info") else severity

    # ---- numbers
    def _digits(self, text: str) -> str:
        """Swap the separators of a Python-formatted number (1,234.5) into this language's."""
        if self.code == "vi":
            return text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text

    def integer(self, value: int | None) -> str:
        return DASH if value is None else self._digits(f"{int(value):,}")

    def decimal(self, value: float | None, places: int = 1) -> str:
        return DASH if value is None else self._digits(f"{value:,.{places}f}")

    def percent(self, ratio: float | None, places: int = 2) -> str:
        """A share as a percentage: 61,46 % (vi) / 61.46% (en)."""
        if ratio is None:
            return DASH
        number = self.decimal(ratio * 100, places)
        return f"{number}{NBSP}%" if self.code == "vi" else f"{number}%"

    def signed(self, delta: float, fmt: Callable[[float], str]) -> str:
        """+x / −x / ±x as `fmt` shows |delta|: a change that rounds to zero shows as ±0, not −0."""
        shown = fmt(abs(delta))
        zero = fmt(0.0)
        sign = "±" if shown == zero else ("+" if delta > 0 else "−")
        return f"{sign}{shown}"

    def points(self, delta: float | None, places: int = 2) -> str:
        """A signed difference of two shares, in percentage points: +1,23 điểm / +1.23 pts."""
        if delta is None:
            return DASH
        return self.signed(delta, lambda v: f"{self.decimal(v * 100, places)}{NBSP}{self.t('points')}")

    def pts(self, value: float | None, places: int = 1) -> str:
        """An unsigned amount of percentage points (a gap to target): 6,1 điểm / 6.1 pts."""
        return DASH if value is None else f"{self.decimal(value * 100, places)}{NBSP}{self.t('points')}"

    def minutes(self, value: float | None, places: int = 1) -> str:
        return DASH if value is None else f"{self.decimal(value, places)}{NBSP}{self.t('minutes')}"

    # ---- dates and times (already local)
    def day(self, d: date) -> str:
        """Thứ Hai, 14/07/2025 / Monday 14 July 2025."""
        weekday = WEEKDAYS[self._i][d.weekday()]
        if self.code == "vi":
            return f"{weekday}, {d:%d/%m/%Y}"
        return f"{weekday} {d.day} {MONTHS_EN[d.month - 1]} {d.year}"

    def short_day(self, d: date) -> str:
        return f"{d:%d/%m/%Y}" if self.code == "vi" else d.isoformat()

    def clock(self, t: datetime) -> str:
        return f"{t:%H:%M}"

    def stamp(self, t: datetime) -> str:
        return f"{t:%H:%M %d/%m/%Y}" if self.code == "vi" else f"{t:%Y-%m-%d %H:%M}"
