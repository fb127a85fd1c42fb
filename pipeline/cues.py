"""Cue lexicon: the phrases ``shared/spec/causes.md`` and the seeds name for each cause.

One mechanism serves two purposes:

* the model reads each cue as a binary feature (``CueFeatures``), which lets a few hundred
  labelled examples generalise to wordings they never contained;
* the scorer quotes the matched text as ``evidence`` for the buyer-side and malicious causes.

Cues run on *normalised* text (simplified script, half-width). All patterns are compiled into
one alternation with named groups and matched in a single pass per review (:func:`match_cues`,
the reference); a chunk of reviews is matched at once by :func:`match_cues_many`, which tries
the alternation only where the text begins like some cue, with the same result.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

try:  # the regex parser, to find the characters each cue can start with
    import re._constants as _c
    import re._parser as _parser
except ImportError:  # Python < 3.11
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]


@dataclass(frozen=True)
class Cue:
    name: str
    cause: str  # the cause it argues for
    label: str  # short evidence phrase (Chinese / English)
    pattern: str


_NUM = r"[0-9一二两三四五六七八九十百千几]+"
_MONEY = rf"(?:{_NUM}(?:块钱?|元|刀|美金|rmb|RMB)|红包|🧧|💰)"

CUES: tuple[Cue, ...] = (
    # 1 expectation gap
    Cue("eg_mismatch", "expectation_gap", "与描述/图片不符 not as described",
        r"色差|货不对板|与描述不|和描述不|跟描述不|描述不符|与图片不|和图片不|跟图片不|图片.{0,6}(?:不一样|差很多|差太多|差别)"
        r"|实物.{0,4}(?:不符|不一样|差)|不像图|卖家秀|详情页?.{0,8}(?:写|说)"),
    Cue("eg_size", "expectation_gap", "尺码/款式 size or style",
        r"尺码|码数|偏大|偏小|太大了|太小了|不合身|款式|颜色.{0,4}(?:不|差)"),
    Cue("eg_value", "expectation_gap", "不值/落差 not worth it",
        r"不值|性价比|降价|差价|保价|没(?:有)?想象|不如想象|想象中|期望|失望|亏了|冤种"),
    Cue("eg_gift", "expectation_gap", "赠品 gift missing",
        r"赠品|送的.{0,4}(?:呢|没有)|说好的.{0,8}(?:呢|没有)|(?:没|不)(?:有)?送"),
    # 2 service attitude
    Cue("sv_bad", "service_attitude", "客服态度 service attitude",
        r"态度(?:很|极|太|真)?(?:差|恶劣|不好|冷淡)|不理人?|不回(?:复|消息)?|没人回|回复(?:太|很)?慢|已读不回|爱答不理|骂人|说话难听"
        r"|推卸|踢皮球|推脱|敷衍|拒绝(?:退|换|保价|处理)|不给(?:退|换|保价|处理|解决)|不处理|不解决|拖着|拉黑|不负责"),
    Cue("sv_party", "service_attitude", "客服/售后 seller's staff",
        r"客服|售后|卖家|商家|店家|掌柜|小二"),
    # 3 stock-out & logistics
    Cue("lg_slow", "stockout_logistics", "发货/物流慢 slow shipping",
        r"发货(?:太|很|真|好|超)?慢|迟迟不发|还没(?:有)?发|不发货|没发货|才发货|物流(?:太|很|真|超)?慢|快递(?:太|很|真|超)?慢|送货(?:太|很)?慢"
        r"|到货(?:太|很)?慢|物流.{0,6}(?:停|卡|没动|不动|没更新)|缺货|断货|预售|等了.{0,4}(?:天|周|个月)|还没(?:有)?(?:到|收到)"),
    Cue("lg_wrong", "stockout_logistics", "发错/少发 wrong or missing items",
        r"发错|寄错|少发|漏发|少了(?:一|几|两)|没收到|丢件|丢了|收到.{0,6}不是我(?:买|要)的"),
    Cue("lg_damage", "stockout_logistics", "运输破损 damaged in transit",
        r"包装.{0,4}(?:破|烂|坏|压)|压坏|压扁|压碎|摔坏|破损|外箱|快递.{0,6}(?:摔|压|破|撞)"),
    Cue("lg_delivery", "stockout_logistics", "快递/安装 delivery or installation",
        r"快递|物流|配送|送货|快递员|送货员|快递小哥|顺丰|圆通|中通|申通|韵达|安装|师傅|预约|上门"),
    # 4 product quality
    Cue("pq_broken", "product_quality", "故障/损坏 faulty",
        r"坏了|坏的|损坏|故障|不能用|用不了|不工作|没反应|开不了机|黑屏|死机|卡顿|漏水|漏液|鼓包|断了|裂了|开裂|掉漆|生锈"
        r"|不制冷|不制热|噪音|异响|声音大|发烫|跳闸"),
    Cue("pq_poor", "product_quality", "质量差 poor quality",
        r"质量(?:太|很|真|极)?(?:差|不好|一般|堪忧|不行)|做工(?:差|粗糙|不好)|粗糙|开线|掉色|褪色|起球|缩水|变形|线头|异味|臭|刺鼻"
        r"|劣质|次品|瑕疵|不好用|难用|难吃|难喝|不好吃"),
    Cue("pq_fake", "product_quality", "假货/翻新 fake or refurbished",
        r"假货|假的|盗版|山寨|翻新|二手|不是正品|高仿|仿品"),
    Cue("pq_stale", "product_quality", "不新鲜/过期 stale",
        r"不新鲜|烂了|烂的|坏掉|发霉|过期|变质|蔫|有虫"),
    Cue("eg_taste", "expectation_gap", "口味/外观偏好 not to the buyer's taste",
        r"色号|颜色(?:太|偏|有点)?(?:深|浅|暗|亮)|偏(?:黄|白|黑|暗|灰|深|浅|粉)|显(?:黑|黄|老|胖)|不喜欢(?:这个|这种)?(?:味|香|颜色|款式|质地|样子|肤感)?"
        r"|味道(?:太|有点)?(?:冲|浓|重)|太香|香味(?:太|很|有点)?(?:浓|重|冲)|质地|厚重|肤感|不适合我|不合口味|口味(?:太)?重|偏咸|太咸|太甜|太辣"
        r"|挤脚|磨脚|夹脚|不透气|鞋底(?:太)?硬|版型|太薄|透光|分量(?:太)?少|买贵了"),
    # 4 (performance) — the item does not do its job, or harms (causes.md boundary rules)
    Cue("pq_effect", "product_quality", "没效果/伤害 does not work or harms",
        r"没(?:有)?(?:什么|一点)?(?:效果|作用)|无效|不保湿|不滋润|不控油|不遮瑕|清洁力差|洗不干净|卸不(?:掉|干净)|过敏|刺痛|烂脸|闷痘|长痘|闭口"
        r"|红肿|发痒|掉发|脱发|头皮屑|(?:一|两)天就油|临期|没熟|生的|头发丝|吃出|开胶|脱胶|拉肚子"),
    # 5 novice buyer
    Cue("nb_first", "novice_buyer", "新手/第一次网购 first-time buyer",
        r"第一次(?:网购|在网上|上网|网上|在.{1,6}(?:买|下单)|用.{1,4}买|买东西)|新手(?!妈妈|爸爸)|头一(?:回|次)网购|不太会|不会(?:评|弄|操作)"
        r"|不懂(?:评价|规则|这些)|不知道(?:中评|差评|评价)|以为(?:中评|差评|三星)"),
    Cue("nb_fix", "novice_buyer", "想改评价/点错 wants to change rating",
        r"(?:怎么|如何|咋|能不能|可不可以|可以|还能)(?:改|撤回|修改|删除|删掉|追加)|在哪(?:里|儿)?改|不知道(?:怎么|咋)?(?:改|撤)"
        r"|点错|手滑|误点|按错|选错|不小心(?:点|按|给)"),
    Cue("nb_mid", "novice_buyer", "中评/三星 middling rating",
        r"中评|三星|3星|三颗星|四星|4星|三分|3分"),
    Cue("nb_praise", "novice_buyer", "好评文字 praising text",
        r"(?<![不没别])(?<!不是)(?<!不太)(?<!不怎么)(?<!没那么)(?<!不够)(?<!并不)"
        r"(?:挺好|很好|不错|满意|喜欢|好用|好吃|好看|好喝|没毛病|值得|推荐|很棒|真棒|可以的|还行|还可以|一般般|挺香|很甜|很香|舒服)"),
    Cue("nb_nofault", "novice_buyer", "非商品问题 no fault of the shop",
        r"不是(?:质量|你们|店家|商家|卖家|产品|东西)(?:的)?问题|(?:东西|质量|产品|商品|机器)(?:本身|其实)?(?:没|没有)(?:问题|毛病)|没什么(?:问题|毛病)"
        r"|不是针对|不是故意|对不起|抱歉|不好意思|想多了|冤枉"),
    # 6 prank
    Cue("pr_laugh", "prank", "玩笑/哈哈 joking",
        r"哈哈|嘿嘿|嘻嘻|hhh|233|😂|🤣|😜|😝|🐶|🤪|逗你|逗逗|开(?:个)?玩笑|闹着玩|恶作剧|整蛊|吓吓你|皮一下|好玩|骗你的|不是真的"),
    Cue("pr_whim", "prank", "任性/试试 on a whim",
        r"就想(?:给|试|差评)|任性|试试|测试|随便(?:评|给)|随手|凑字数|字数|不知道说啥|不知道写什么|心情不好|心情差|失恋|被.{0,4}骂|不开心|emo|无聊"),
    # 7 competitor sabotage
    Cue("cs_steer", "competitor_sabotage", "引流到别家 steering to another shop",
        r"去.{0,10}(?:家|店|旗舰店|官方|那边)(?:买|看看|看)|别家|隔壁|其他家|其它家|那家|另一家|(?:推荐|建议)(?:去|买)|链接私|私我|私信|私聊|私訊"
        r"|加(?:我)?(?:微信|vx|v信|qq|薇|威|扣扣)|看我头像|我主页|头像|URL"),
    Cue("cs_defame", "competitor_sabotage", "笼统抹黑 sweeping defamation",
        r"骗子|垃圾店|黑店|千万(?:别|不要)买|别买|不要买|都别买|快跑|避雷|远离|抵制|大家(?:小心|注意|别)|坑人|无良|不要脸|良心(?:被|让)狗"),
    Cue("cs_insider", "competitor_sabotage", "行内人口吻 insider price claim",
        r"进价|批发价|成本(?:价|才|不到)|出厂价|工厂货|拿货|同行|货源|同款.{0,6}(?:才|只要|只卖)"),
    Cue("cs_fake_sales", "competitor_sabotage", "指控刷单 claims fake sales",
        r"刷单|刷的|刷出来|(?:好评|评论|评价|销量).{0,3}(?:全|都)是(?:假|刷)|水军"),
    Cue("cs_scare", "competitor_sabotage", "安全恐吓 safety scare",
        r"住院|有毒|中毒|致癌|烂脸|激素|上吐下泻|毁容|三无|吃出人命|农药|重金属|毒奶"),
    # 8 extortion
    Cue("ex_money", "extortion", "索要钱财 demands money",
        rf"返(?:我)?{_NUM}|赔(?:我)?{_NUM}|赔偿{_NUM}|{_MONEY}|{_NUM}(?=(?:块|元)?(?:改|删|撤))|转(?:我|账)|微信转|支付宝转|给(?:我)?(?:钱|补偿)|补偿|赔钱|赔偿"
        rf"|{_NUM}倍|假一赔(?:十|三)|退一赔三"),
    Cue("ex_chip", "extortion", "以评价要挟 review used as leverage",
        r"(?:改|删|撤|修改)(?:成|为)?(?:好评|评价|差评|五星|5星)|好评.{0,4}(?:改|删)|差评.{0,6}(?:删|撤|改|挂着|留着|永远|一直)"
        r"|(?:一直|永远|天天|每天|每次|每买).{0,6}(?:差评|评|挂着|负评|追评)|追评|评价.{0,6}(?:修改|可以改|看你)|看(?:你|你们)(?:的)?表现"
        r"|看着办|懂的|过时不候|协商|负评"),
    Cue("ex_threat", "extortion", "投诉威胁 complaint threat",
        r"12315|工商|消协|市场监管|黑猫投诉|消保官|投诉到|举报|媒体|微博|律师|起诉|法院|消费者权益保护法|消法|第五十五条|知假买假|职业打假|打假"),
    Cue("ex_condition", "extortion", "附条件 conditional demand",
        r"不(?:给|赔|退|转|同意)(?:钱|我)?.{0,8}(?:就|那就)|否则|要不然|不然|如果不.{0,10}就|除非|少一分"),
    # generic
    Cue("neg_not", "", "否定 negation", r"不是|没有|并不|并没|无关"),
    Cue("exclaim", "", "感叹 exclamation", r"!{2,}|\?{2,}"),
)

CUE_NAMES: tuple[str, ...] = tuple(c.name for c in CUES)
BY_NAME: dict[str, Cue] = {c.name: c for c in CUES}
# Shape features computed without a pattern.
SHAPE_NAMES: tuple[str, ...] = ("shape_no_cjk", "shape_short", "shape_repetitive", "shape_long")
FEATURE_NAMES: tuple[str, ...] = CUE_NAMES + SHAPE_NAMES

_CJK = re.compile(r"[\u3400-\u9fff]")


def _first_chars(items) -> set[str] | None:
    """Characters a parsed regex sequence can start with; None when that set is unbounded."""
    out: set[str] = set()
    for op, av in items:
        if op is _c.LITERAL:
            return out | {chr(av)}
        if op is _c.IN:
            for o, a in av:
                if o is _c.LITERAL:
                    out.add(chr(a))
                elif o is _c.RANGE and a[1] - a[0] <= 3000:
                    out.update(map(chr, range(a[0], a[1] + 1)))
                else:
                    return None
            return out
        if op is _c.SUBPATTERN or op is _c.BRANCH:
            for alt in ([av[-1]] if op is _c.SUBPATTERN else av[1]):
                f = _first_chars(alt)
                if f is None:
                    return None
                out |= f
            return out
        if op is _c.MAX_REPEAT or op is _c.MIN_REPEAT:
            f = _first_chars(av[2])
            if f is None:
                return None
            out |= f
            if av[0] > 0:
                return out
            continue
        if op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT):
            continue
        return None
    return None


@lru_cache(maxsize=None)
def _one_regex() -> re.Pattern[str]:
    """All cues as one alternation of named groups, behind a lookahead of the characters any cue
    can start with: positions that start no cue (most of them) fail at once."""
    body = "|".join(f"(?P<{c.name}>{c.pattern})" for c in CUES)
    starts: set[str] = set()
    for c in CUES:
        f = _first_chars(_parser.parse(c.pattern, re.I))
        if f is None:
            return re.compile(body, re.I)
        starts |= f
    lead = "".join(re.escape(ch) for ch in sorted(starts))
    return re.compile(f"(?=[{lead}])(?:{body})", re.I)


def match_cues(text: str) -> dict[str, list[str]]:
    """Cue name → the matched snippets, for one normalised review."""
    found: dict[str, list[str]] = {}
    for m in _one_regex().finditer(text):
        found.setdefault(m.lastgroup, []).append(m.group())
    return found


def shape(text: str) -> dict[str, bool]:
    """Surface signs of a non-serious review: no Chinese at all, very short, repetitive."""
    cjk = len(_CJK.findall(text))
    compact = text.replace(" ", "")
    return {
        "shape_no_cjk": bool(compact) and cjk == 0,
        "shape_short": 0 < len(compact) <= 6,
        "shape_repetitive": len(compact) >= 4 and len(set(compact)) <= len(compact) / 3,
        "shape_long": len(compact) >= 80,
    }


def cue_vector(text: str) -> list[int]:
    found = match_cues(text)
    sh = shape(text)
    return [1 if n in found else 0 for n in CUE_NAMES] + [1 if sh[n] else 0 for n in SHAPE_NAMES]


# --- the same matches for a whole chunk of reviews ------------------------------------------------
#
# The alternation above is tried at every position that starts with one of ~300 lead characters
# (40 % of the characters of a review), each time through all 34 cues. A cue can only match where
# the text begins with one of its possible first three characters, and those are few: from the
# parsed patterns we list, per cue, every possible 3-character prefix (``.`` and large classes
# stand for any character; a positive lookahead constrains what follows; other assertions are
# skipped, which only adds candidates). The chunk's code points are looked up in those prefix
# tables with numpy, and at each candidate position — one in ~10 — the reviews are matched in
# Python exactly as ``finditer`` scans them: left to right, the first cue that matches wins, and
# scanning resumes at its end. At a candidate the regex tried holds only the cues whose prefixes
# fit there (in their order): the others cannot match there, so the same cue wins with the same
# match. ``tests/test_speed_equivalence.py`` checks the result equals :func:`match_cues`.

_PREFIX = 3
_ANY = None
_MAX_CODE = 0x110000


class _Unsupported(Exception):
    pass


def _class_chars(items) -> set[str] | None:
    chars: set[str] = set()
    for o, a in items:
        if o is _c.LITERAL:
            chars.add(chr(a))
        elif o is _c.RANGE and a[1] - a[0] <= 3000:
            chars.update(map(chr, range(a[0], a[1] + 1)))
        else:  # negated classes, categories, huge ranges: any character
            return None
    return chars


def _item_prefixes(op, av, k: int) -> set[tuple]:
    """Prefixes (tuples of ≤ k characters or _ANY) of what one parsed item can match. A tuple
    shorter than k means the item can end there; one of length k is cut."""
    if op is _c.LITERAL:
        return {(chr(av),)}
    if op is _c.IN:
        chars = _class_chars(av)
        return {(_ANY,)} if chars is None else {(ch,) for ch in chars}
    if op in (_c.ANY, _c.NOT_LITERAL, _c.CATEGORY):
        return {(_ANY,)}
    if op is _c.SUBPATTERN:
        return _seq_prefixes(av[-1], k)
    if op is _c.BRANCH:
        out: set[tuple] = set()
        for alt in av[1]:
            out |= _seq_prefixes(alt, k)
        return out
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        lo, hi, item = av
        if item.getwidth()[0] == 0:
            raise _Unsupported("a repeated part that can match empty text")
        out = {()} if lo == 0 else set()
        cur: set[tuple] = {()}
        for r in range(1, k + 2):  # each repetition adds a character: k + 1 of them fill every prefix
            cur = {t if len(t) >= k else t + u for t in cur for u in ((),) if len(t) >= k} | {
                t + u for t in cur if len(t) < k for u in _seq_prefixes(item, k - len(t))}
            full = all(len(t) >= k for t in cur)
            if r >= lo or full:
                out |= cur
            if r >= hi or full:
                break
        return out
    if op is _c.ASSERT and av[0] == 1:  # a lookahead: what follows must begin like it; stop there
        return {t + (_ANY,) * (k - len(t)) for t in _seq_prefixes(av[1], k)}
    if op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT):  # zero-width: no constraint
        return {()}
    raise _Unsupported(str(op))


_MEMO: dict[tuple[int, int], set[tuple]] = {}  # during one build: parts repeat (the number class)


def _seq_prefixes(items, k: int) -> set[tuple]:
    key = (id(items), k)
    if key not in _MEMO:
        _MEMO[key] = _seq_prefixes_of(items, k)
    return _MEMO[key]


def _seq_prefixes_of(items, k: int) -> set[tuple]:
    out = {()}
    for op, av in items:
        nxt = set()
        for t in out:
            if len(t) >= k:
                nxt.add(t)
            else:
                nxt.update(t + u for u in _item_prefixes(op, av, k - len(t)))
        out = nxt
    return out


def _wild_chars() -> np.ndarray:
    """Non-ASCII characters that ``re.I`` matches to an ASCII letter (İ ı ſ K): a candidate
    wherever they occur. (All in the BMP: no supplementary character folds to ASCII.)"""
    every = "".join(map(chr, range(0x80, 0x10000)))
    return np.asarray([m.start() + 0x80 for m in re.finditer("(?i)[a-z]", every)], dtype=np.int64)


class _CueScanner:
    """Prefix tables of the cues and the small regexes tried at candidate positions."""

    def __init__(self) -> None:
        tuples: dict[int, set[tuple]] = {}
        parsed_all = [_parser.parse(cue.pattern, re.I) for cue in CUES]  # alive while _MEMO holds their ids
        _MEMO.clear()
        for i, cue in enumerate(CUES):
            parsed = parsed_all[i]
            if parsed.getwidth()[0] == 0:
                raise _Unsupported("a cue that can match empty text")
            found = _seq_prefixes(parsed, _PREFIX)
            out = set()
            for t in found:
                t = t + (_ANY,) * (_PREFIX - len(t))
                if t[0] is _ANY:
                    raise _Unsupported("a cue that can start with any character")
                for ch in t:  # re.I: an ASCII letter matches both cases; other cased letters unsupported
                    if ch is not _ANY and not ch.isascii() and (ch.lower() != ch or ch.upper() != ch):
                        raise _Unsupported("a cased non-ASCII character")
                variants = [(ch,) if ch is _ANY or not ch.isalpha() or not ch.isascii() else (ch.lower(), ch.upper())
                            for ch in t]
                out.update(itertools.product(*variants))
            tuples[i] = out
        _MEMO.clear()
        lead = sorted({t[0] for ts in tuples.values() for t in ts})
        self.lead_id = np.full(_MAX_CODE, -1, dtype=np.int32)
        self.lead_id[[ord(c) for c in lead]] = np.arange(len(lead), dtype=np.int32)
        self.mask1 = np.zeros(len(lead), dtype=np.int64)
        pairs: dict[int, int] = {}
        triples: dict[int, int] = {}
        self.deeper = np.zeros(len(lead), dtype=bool)  # some cue needs the next characters
        for i, ts in tuples.items():
            bit = 1 << i
            for a, b, c in ts:
                la = int(self.lead_id[ord(a)])
                if b is _ANY:
                    self.mask1[la] |= bit
                elif c is _ANY:
                    key = (la << 21) | ord(b)
                    pairs[key] = pairs.get(key, 0) | bit
                    self.deeper[la] = True
                else:
                    key = (((la << 21) | ord(b)) << 21) | ord(c)
                    triples[key] = triples.get(key, 0) | bit
                    pairs.setdefault((la << 21) | ord(b), 0)  # so that the triple is looked up
                    self.deeper[la] = True
        self.pair_index = pd.Index(np.fromiter(pairs, dtype=np.int64, count=len(pairs)))
        self.pair_mask = np.fromiter(pairs.values(), dtype=np.int64, count=len(pairs))
        self.pair_deeper = np.zeros(len(pairs), dtype=bool)
        deep_pairs = {key >> 21 for key in triples}
        self.pair_deeper[self.pair_index.get_indexer(np.fromiter(deep_pairs, dtype=np.int64, count=len(deep_pairs)))] = True
        self.triple_index = pd.Index(np.fromiter(triples, dtype=np.int64, count=len(triples)))
        self.triple_mask = np.fromiter(triples.values(), dtype=np.int64, count=len(triples))
        self.wild = np.zeros(_MAX_CODE, dtype=bool)
        self.wild[_wild_chars()] = True
        self.all = (1 << len(CUES)) - 1
        self._regex: dict[int, re.Pattern[str]] = {}

    def regex(self, mask: int) -> re.Pattern[str]:
        rx = self._regex.get(mask)
        if rx is None:
            body = "|".join(f"(?P<{c.name}>{c.pattern})" for i, c in enumerate(CUES) if mask >> i & 1)
            rx = self._regex[mask] = re.compile(body, re.I)
        return rx

    def candidates(self, cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``cps`` where some cue may match, and the mask of those cues."""
        n = len(cps)
        c1 = np.append(cps[1:], 0)
        c2 = np.append(cps[2:], [0, 0])[:n]
        lid = self.lead_id[cps]
        wild = self.wild[cps] | self.wild[c1] | self.wild[c2]
        at = np.flatnonzero((lid >= 0) | wild)
        la = lid[at].astype(np.int64)
        mask = np.where(la >= 0, self.mask1[la], 0)
        deep = np.flatnonzero((la >= 0) & self.deeper[np.maximum(la, 0)])
        if len(deep):
            pair_key = (la[deep] << 21) | c1[at[deep]]
            p = self.pair_index.get_indexer(pair_key)
            hit = p >= 0
            mask[deep[hit]] |= self.pair_mask[p[hit]]
            deeper = deep[hit][self.pair_deeper[p[hit]]]
            if len(deeper):
                t = self.triple_index.get_indexer((((la[deeper] << 21) | c1[at[deeper]]) << 21) | c2[at[deeper]])
                ok = t >= 0
                mask[deeper[ok]] |= self.triple_mask[t[ok]]
        mask[wild[at]] = self.all
        keep = mask != 0
        return at[keep], mask[keep]


#: the scanner of this process, built on first use (``[None]``: the cues cannot be described by
#: prefix tables); a verified fast-load copy of the model brings one built by the same code
#: (:mod:`pipeline.persist`)
SCANNER: list[_CueScanner | None] = []


def _scanner() -> _CueScanner | None:
    if not SCANNER:
        try:
            SCANNER.append(_CueScanner())
        except (_Unsupported, RecursionError):  # a cue the prefix tables cannot describe: the plain way
            SCANNER.append(None)
    return SCANNER[0]


#: the matches of the last two calls (a chunk's reviews, then the clauses the stacker split), for the
#: evidence of the same reviews (same results as match_cues)
_RECENT: list[dict[str, dict[str, list[str]]]] = [{}, {}]


def match_cues_many(texts: list[str]) -> list[dict[str, list[str]]]:
    """:func:`match_cues` of every text, for a whole chunk at once."""
    scanner = _scanner()
    if scanner is None or not texts:
        out = [match_cues(t) for t in texts]
    else:
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        starts = np.cumsum(lengths + 1) - (lengths + 1)
        cps = np.frombuffer("\n".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        at, masks = scanner.candidates(cps)
        which = np.searchsorted(starts, at, "right") - 1
        local = at - starts[which]
        out = [{} for _ in texts]
        compiled = scanner._regex
        cur, resume, text, found = -1, 0, "", {}
        for t, q, mask in zip(which.tolist(), local.tolist(), masks.tolist()):
            if t != cur:
                cur, resume, text, found = t, 0, texts[t], out[t]
            elif q < resume:
                continue
            rx = compiled.get(mask)
            m = (rx if rx is not None else scanner.regex(mask)).match(text, q)
            if m is not None:
                name, resume = m.lastgroup, m.end()
                snippets = found.get(name)
                if snippets is None:
                    found[name] = [m.group()]
                else:
                    snippets.append(m.group())
    _RECENT[:] = [_RECENT[1], dict(zip(texts, out))]
    return out


def recent_matches(text: str) -> dict[str, list[str]]:
    """:func:`match_cues` of a text of the last chunk (computed then), else computed now."""
    found = _RECENT[1].get(text)
    if found is None:
        found = _RECENT[0].get(text)
    return match_cues(text) if found is None else found


def shape_many(texts: list[str]) -> np.ndarray:
    """:func:`shape` of every text as an ``(n, 4)`` 0/1 array in SHAPE_NAMES order."""
    n = len(texts)
    out = np.zeros((n, len(SHAPE_NAMES)), dtype=np.float64)
    if not n:
        return out
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    owner = np.repeat(np.arange(n), lengths)
    cjk = np.bincount(owner, weights=(cps >= 0x3400) & (cps <= 0x9FFF), minlength=n)
    solid = cps != 32
    compact = np.bincount(owner, weights=solid, minlength=n).astype(np.int64)
    key = np.sort((owner[solid] << 21) | cps[solid], kind="stable")  # (text, character): distinct ones per text
    first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=bool)
    distinct = np.bincount(key[first] >> 21, minlength=n)
    out[:, 0] = (compact > 0) & (cjk == 0)
    out[:, 1] = (compact > 0) & (compact <= 6)
    out[:, 2] = (compact >= 4) & (distinct <= compact / 3)
    out[:, 3] = compact >= 80
    return out


class CueFeatures(TransformerMixin, BaseEstimator):
    """Binary cue and shape features of normalised texts, as a sparse matrix."""

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        # cue_vector() of every text, for the whole chunk at once (match_cues_many, shape_many)
        texts = X if isinstance(X, list) else list(X)
        dense = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float64)
        column = {n: j for j, n in enumerate(CUE_NAMES)}
        for i, found in enumerate(match_cues_many(texts)):
            for name in found:
                dense[i, column[name]] = 1.0
        dense[:, len(CUE_NAMES):] = shape_many(texts)
        return sparse.csr_matrix(dense)

    def get_feature_names_out(self, input_features=None):
        return np.asarray([f"cue:{n}" for n in FEATURE_NAMES], dtype=object)
