-- 0001 core cadastral model (TD/T 1066-2021 不动产登记数据库标准, English names; see docs/data-model.md)
-- Forward-only: never edit this file once applied; add a new numbered file instead.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE SCHEMA IF NOT EXISTS cad;   -- spatial units and registration records
CREATE SCHEMA IF NOT EXISTS pii;   -- parties' personal data, encrypted; nothing else lives here

-- Every write belongs to one change set (demo load, accepted survey, registrar edit).
CREATE TABLE cad.change_set (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('demo', 'survey', 'edit', 'import', 'registration')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    note        text
);

-- ------------------------------------------------------------------ spatial units
-- Common to every versioned table: version_id (row), feature_id (stable identity across
-- versions, opaque in URLs), valid_from/valid_to (NULL = current), the change that created the
-- version and the change that retired it.

-- 宗地 KTT_ZDJBXX
CREATE TABLE cad.parcel (
    version_id       bigserial PRIMARY KEY,
    feature_id       uuid NOT NULL,
    parcel_code      char(19) NOT NULL
                     CHECK (parcel_code ~ '^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}$'),   -- ZDDM
    county_code      char(6) GENERATED ALWAYS AS (substr(parcel_code, 1, 6)) STORED, -- QXDM, shard key
    seat             text,                         -- ZL 坐落
    compound_name    text,                         -- 小区/项目名称 (search)
    land_use         varchar(6) NOT NULL,          -- YT, GB/T 21010 code
    right_type       smallint NOT NULL,            -- QLLX
    right_nature     smallint,                     -- QLXZ 101 划拨 102 出让 ...
    registered_area  numeric(14, 2),               -- ZDMJ, m² (MJDW = 1 平方米)
    neighbour_north  text,                         -- ZDSZB 四至 北
    neighbour_east   text,                         -- ZDSZD 东
    neighbour_south  text,                         -- ZDSZN 南
    neighbour_west   text,                         -- ZDSZX 西
    map_sheet        text,                         -- TFH 图幅号
    srid             integer NOT NULL CHECK (srid NOT IN (0, 3857, 4326, 4490)),
    geom             geometry(MultiPolygon) NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857        geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    valid_from       timestamptz NOT NULL,
    valid_to         timestamptz,
    change_id        bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by       bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    EXCLUDE USING gist (parcel_code WITH =, tstzrange(valid_from, valid_to) WITH &&),
    EXCLUDE USING gist (feature_id WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE UNIQUE INDEX parcel_code_current ON cad.parcel (parcel_code) WHERE valid_to IS NULL;
CREATE INDEX parcel_geom_3857_current ON cad.parcel USING gist (geom_3857) WHERE valid_to IS NULL;
CREATE INDEX parcel_geom_3857 ON cad.parcel USING gist (geom_3857);
CREATE INDEX parcel_feature ON cad.parcel (feature_id);
CREATE INDEX parcel_seat_trgm ON cad.parcel USING gin (seat gin_trgm_ops);

-- 界址点 KTT_GY_JZD
CREATE TABLE cad.boundary_point (
    version_id   bigserial PRIMARY KEY,
    feature_id   uuid NOT NULL,
    parcel_code  char(19) NOT NULL,               -- ZDZHDM
    point_no     text NOT NULL,                   -- JZDH 界址点号, e.g. J12
    seq          integer NOT NULL,                -- SXH 顺序号 along the ring
    ring_no      smallint NOT NULL DEFAULT 1,     -- 圈号 (1 outer, >1 holes)
    marker_type  smallint,                        -- JBLX 界标类型
    point_type   smallint,                        -- JZDLX 界址点类型
    x_north      numeric(15, 3) NOT NULL,         -- XZBZ (northing, mm)
    y_east       numeric(15, 3) NOT NULL,         -- YZBZ (easting, mm)
    srid         integer NOT NULL,
    geom         geometry(Point) NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857    geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    change_id    bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by   bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX boundary_point_parcel ON cad.boundary_point (parcel_code) WHERE valid_to IS NULL;
CREATE INDEX boundary_point_geom_3857 ON cad.boundary_point USING gist (geom_3857) WHERE valid_to IS NULL;

-- 界址线 KTT_GY_JZX
CREATE TABLE cad.boundary_line (
    version_id      bigserial PRIMARY KEY,
    feature_id      uuid NOT NULL,
    parcel_code     char(19) NOT NULL,            -- ZDZHDM
    start_point_no  text NOT NULL,
    end_point_no    text NOT NULL,
    length          numeric(12, 3) NOT NULL,      -- JZXCD
    line_category   smallint,                     -- JZXLB 界址线类别 (围墙, 墙壁, 道路 ...)
    line_position   smallint,                     -- JZXWZ 1 内 2 中 3 外
    line_nature     smallint,                     -- JXXZ 界线性质 (已定界, 未定界, 争议 ...)
    srid            integer NOT NULL,
    geom            geometry(LineString) NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857       geometry(LineString, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    change_id       bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by      bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX boundary_line_parcel ON cad.boundary_line (parcel_code) WHERE valid_to IS NULL;

-- 自然幢 KTT_FW_ZRZ
CREATE TABLE cad.building (
    version_id       bigserial PRIMARY KEY,
    feature_id       uuid NOT NULL,
    building_code    char(24) NOT NULL
                     CHECK (building_code ~ '^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{4}$'), -- ZRZH
    parcel_code      char(19) GENERATED ALWAYS AS (substr(building_code, 1, 19)) STORED,       -- ZDDM
    name             text,                         -- JZWMC 建筑物名称
    project_name     text,                         -- XMMC 项目名称
    floors_total     smallint NOT NULL CHECK (floors_total > 0),   -- ZCS
    floors_above     smallint NOT NULL CHECK (floors_above >= 0),  -- DSCS
    floors_below     smallint NOT NULL DEFAULT 0 CHECK (floors_below >= 0), -- DXCS
    height           numeric(7, 2),                -- JZWGD 建筑物高度 (m)
    ground_elevation numeric(8, 2) NOT NULL DEFAULT 0,  -- 室外地坪高程 (m)
    structure        smallint,                     -- FWJG 房屋结构
    planned_use      varchar(4),                   -- GHYT 规划用途
    completion_date  date,                         -- JGRQ 竣工日期
    floor_area       numeric(14, 2),               -- SCJZMJ 实测建筑面积
    footprint_area   numeric(14, 2),               -- ZZDMJ 幢占地面积
    srid             integer NOT NULL,
    geom             geometry(MultiPolygon) NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857        geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    valid_from       timestamptz NOT NULL,
    valid_to         timestamptz,
    change_id        bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by       bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK (floors_total = floors_above + floors_below),
    EXCLUDE USING gist (building_code WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE UNIQUE INDEX building_code_current ON cad.building (building_code) WHERE valid_to IS NULL;
CREATE INDEX building_parcel ON cad.building (parcel_code) WHERE valid_to IS NULL;
CREATE INDEX building_geom_3857_current ON cad.building USING gist (geom_3857) WHERE valid_to IS NULL;
CREATE INDEX building_name_trgm ON cad.building USING gin (name gin_trgm_ops);

-- 层 KTT_FW_C (floor outline, base elevation and storey height per floor)
CREATE TABLE cad.floor (
    version_id      bigserial PRIMARY KEY,
    feature_id      uuid NOT NULL,
    building_code   char(24) NOT NULL,            -- ZRZH
    floor_no        smallint NOT NULL CHECK (floor_no <> 0), -- CH 层号 (-1, -2 below ground)
    floor_label     text,                         -- MYC 名义层
    base_elevation  numeric(8, 2) NOT NULL,       -- 层底标高 (m, same vertical datum as building)
    storey_height   numeric(5, 2) NOT NULL CHECK (storey_height > 0), -- CG 层高 (m)
    floor_area      numeric(12, 2),               -- CJZMJ 层建筑面积
    srid            integer NOT NULL,
    geom            geometry(MultiPolygon) NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857       geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    change_id       bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by      bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    EXCLUDE USING gist (building_code WITH =, floor_no WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE INDEX floor_building ON cad.floor (building_code) WHERE valid_to IS NULL;

-- 户 KTT_FW_H (unit plan polygon on its floor; extruded from base_elevation by height)
CREATE TABLE cad.unit (
    version_id          bigserial PRIMARY KEY,
    feature_id          uuid NOT NULL,
    unit_code           char(28) NOT NULL
                        CHECK (unit_code ~ '^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{8}$'), -- BDCDYH
    building_code       char(24) GENERATED ALWAYS AS (substr(unit_code, 1, 24)) STORED,       -- ZRZH
    parcel_code         char(19) GENERATED ALWAYS AS (substr(unit_code, 1, 19)) STORED,
    house_code          char(9) GENERATED ALWAYS AS (substr(unit_code, 20, 9)) STORED,        -- FWBM
    floor_no            smallint NOT NULL CHECK (floor_no <> 0),  -- CH (lowest floor of the unit)
    floor_count         smallint NOT NULL DEFAULT 1 CHECK (floor_count > 0), -- SJCS 所在层数
    room_no             text NOT NULL,                 -- SHBW 室号部位, e.g. 1203
    seat                text,                          -- ZL 坐落
    use                 varchar(4) NOT NULL,           -- FWYT1 房屋用途
    house_type          smallint,                      -- FWLX 房屋类型
    house_nature        smallint,                      -- FWXZ 房屋性质
    layout              text,                          -- HX 户型 (e.g. 三室两厅)
    building_area       numeric(12, 2) NOT NULL,       -- SCJZMJ 实测建筑面积
    inner_area          numeric(12, 2),                -- SCTNJZMJ 套内建筑面积
    shared_area         numeric(12, 2),                -- SCFTJZMJ 分摊建筑面积
    shared_coefficient  numeric(10, 6),                -- FTXS 分摊系数
    land_share_area     numeric(12, 2),                -- FTTDMJ 分摊土地面积
    base_elevation      numeric(8, 2) NOT NULL,        -- bottom of the unit volume (m)
    height              numeric(6, 2) NOT NULL CHECK (height > 0), -- volume height (m)
    srid                integer NOT NULL,
    geom                geometry(MultiPolygon) NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857           geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    valid_from          timestamptz NOT NULL,
    valid_to            timestamptz,
    change_id           bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by          bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK (inner_area IS NULL OR shared_area IS NULL
           OR abs(inner_area + shared_area - building_area) <= 0.02),
    EXCLUDE USING gist (unit_code WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE UNIQUE INDEX unit_code_current ON cad.unit (unit_code) WHERE valid_to IS NULL;
CREATE INDEX unit_building_floor ON cad.unit (building_code, floor_no) WHERE valid_to IS NULL;
CREATE INDEX unit_geom_3857_current ON cad.unit USING gist (geom_3857) WHERE valid_to IS NULL;

-- Splits and merges: which features a feature came from (宗地分割/合并, 房屋分户/合户).
CREATE TABLE cad.lineage (
    entity             text NOT NULL CHECK (entity IN ('parcel', 'building', 'unit')),
    parent_feature_id  uuid NOT NULL,
    child_feature_id   uuid NOT NULL,
    event              text NOT NULL CHECK (event IN ('split', 'merge', 'replace')),
    change_id          bigint NOT NULL REFERENCES cad.change_set(id),
    PRIMARY KEY (entity, parent_feature_id, child_feature_id)
);
CREATE INDEX lineage_child ON cad.lineage (entity, child_feature_id);

-- ------------------------------------------------------------------ parties (PII)
-- 权利人 ZTT_GY_QLR. Identity fields are encrypted (AES-256-GCM, key from settings) and looked up
-- through keyed hashes (HMAC-SHA256); no other table holds a name, ID number or phone.
CREATE TABLE pii.party (
    party_id         uuid PRIMARY KEY,
    party_type       smallint NOT NULL,          -- QLRLX 1 个人 2 企业 3 事业单位 4 国家机关 99 其它
    id_type          smallint NOT NULL,          -- ZJZL 1 居民身份证 ... 8 统一社会信用代码
    name_enc         bytea NOT NULL,             -- QLRMC
    name_hash        bytea NOT NULL,
    id_number_enc    bytea NOT NULL,             -- ZJH
    id_number_hash   bytea NOT NULL,
    phone_enc        bytea,                      -- DH
    phone_hash       bytea,
    address_enc      bytea,                      -- DZ
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX party_name_hash ON pii.party (name_hash);
CREATE INDEX party_id_number_hash ON pii.party (id_number_hash);
CREATE INDEX party_phone_hash ON pii.party (phone_hash);

-- ------------------------------------------------------------------ rights and encumbrances
-- One row per version of a registered right (QLT_*/QLF_* common fields); kind-specific fields
-- live in the detail tables below, keyed by the same version_id.
CREATE TABLE cad.right_record (
    version_id         bigserial PRIMARY KEY,
    right_id           uuid NOT NULL,                 -- stable identity across corrections
    kind               text NOT NULL CHECK (kind IN ('ownership', 'land_use', 'mortgage',
                           'pre_notice', 'seizure', 'objection', 'easement', 'cancellation')),
    unit_code          char(28) NOT NULL,             -- BDCDYH
    business_no        text NOT NULL,                 -- YWH 业务号
    registration_type  smallint NOT NULL,             -- DJLX 100 首次 … 900 其他
    right_type         smallint NOT NULL,             -- QLLX
    registration_reason text,                         -- DJYY 登记原因
    certificate_no     text,                          -- BDCQZH 权证号 / BDCDJZMH 证明号
    registry_office    text,                          -- DJJG 登记机构
    registrar_name     text,                          -- DBR 登簿人 (registry staff)
    registered_at      timestamptz,                   -- DJSJ 登记时间
    right_start        date,                          -- QLQSSJ
    right_end          date,                          -- QLJSSJ
    status             smallint NOT NULL CHECK (status IN (0, 1, 2)),  -- QSZT 0 临时 1 现势 2 历史
    remark             text,                          -- FJ 附记
    valid_from         timestamptz NOT NULL,
    valid_to           timestamptz,
    change_id          bigint NOT NULL REFERENCES cad.change_set(id),
    retired_by         bigint REFERENCES cad.change_set(id),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK ((status = 2) = (valid_to IS NOT NULL)),
    CHECK (status = 0 OR registered_at IS NOT NULL),
    EXCLUDE USING gist (right_id WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE INDEX right_unit ON cad.right_record (unit_code, kind) WHERE valid_to IS NULL;
CREATE INDEX right_unit_all ON cad.right_record (unit_code, valid_from);
CREATE INDEX right_certificate ON cad.right_record (certificate_no);
CREATE INDEX right_right_id ON cad.right_record (right_id);

-- 权利人 ↔ 权利 link (ZTF_GY_QLR_GX)
CREATE TABLE cad.right_party (
    right_version_id  bigint NOT NULL REFERENCES cad.right_record(version_id),
    party_id          uuid NOT NULL REFERENCES pii.party(party_id),
    role              smallint NOT NULL,   -- 1 权利人 2 义务人 (抵押人/预告义务人) 3 债务人 4 申请人
    seq               smallint NOT NULL DEFAULT 1,   -- SXH
    share             text,                -- QLBL 权利比例
    co_ownership      smallint,            -- GYFS 0 单独所有 1 共同共有 2 按份共有 3 其他共有
    PRIMARY KEY (right_version_id, party_id, role)
);
CREATE INDEX right_party_party ON cad.right_party (party_id);

-- 房地产权 / 建设用地使用权 QLT_FW_FDCQ_YZ, QLF_QL_JSYDSYQ
CREATE TABLE cad.ownership_detail (
    right_version_id  bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    land_use_start    date,              -- TDSYQSSJ
    land_use_end      date,              -- TDSYJSSJ
    transaction_price numeric(14, 2),    -- FDCJYJG 房地产交易价格 (万元)
    house_use         varchar(4),        -- GHYT
    house_nature      smallint,          -- FWXZ
    structure         smallint,          -- FWJG
    floor_label       text,              -- SZC 所在层
    floors_total      smallint,          -- ZCS
    building_area     numeric(12, 2),    -- JZMJ
    exclusive_area    numeric(12, 2),    -- ZYJZMJ 专有建筑面积
    shared_area       numeric(12, 2),    -- FTJZMJ
    land_area         numeric(14, 2)     -- DYTDMJ/FTTDMJ or SYQMJ
);

-- 抵押权 QLF_QL_DYAQ
CREATE TABLE cad.mortgage_detail (
    right_version_id  bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    mortgage_type     smallint NOT NULL,  -- DYFS 1 一般抵押 2 最高额抵押
    property_kind     smallint,           -- DYBDCLX 1 土地 2 土地和房屋 ...
    secured_amount    numeric(14, 2),     -- BDBZZQSE 被担保主债权数额 (万元)
    max_amount        numeric(14, 2),     -- ZGZQSE 最高债权数额
    debt_start        date,               -- ZWLXQSSJ
    debt_end          date,               -- ZWLXJSSJ
    scope             text                -- ZJJZWDYFW / 担保范围
);

-- 预告登记 QLF_QL_YGDJ
CREATE TABLE cad.pre_notice_detail (
    right_version_id  bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    notice_kind       smallint NOT NULL,  -- YGDJZL 1 预售商品房买卖 2 其它买卖 3 预售商品房抵押权 4 其它抵押权
    price             numeric(14, 2),     -- QDJG 取得价格 (万元)
    house_use         varchar(4),
    building_area     numeric(12, 2)
);

-- 查封登记 QLF_QL_CFDJ
CREATE TABLE cad.seizure_detail (
    right_version_id  bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    authority         text NOT NULL,      -- CFJG 查封机关
    seizure_type      smallint NOT NULL,  -- CFLX 1 查封 2 轮候查封 3 预查封 4 轮候预查封 5 续封
    document          text,               -- CFWJ 查封文件
    document_no       text,               -- CFWH 查封文号
    seizure_start     date,               -- CFQSSJ
    seizure_end       date,               -- CFJSSJ
    scope             text,               -- CFFW
    release_document_no text,             -- JFWH 解封文号
    released_at       timestamptz         -- JFDJSJ
);

-- 异议登记 QLF_QL_YYDJ
CREATE TABLE cad.objection_detail (
    right_version_id  bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    matter            text NOT NULL,      -- YYSX 异议事项
    cancelled_reason  text,               -- ZXYYYY
    cancelled_at      timestamptz         -- ZXYYDJSJ
);

-- 地役权 QLF_QL_DYIQ
CREATE TABLE cad.easement_detail (
    right_version_id  bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    servient_unit_code char(28) NOT NULL, -- GYDBDCDYH 供役地
    dominant_unit_code char(28) NOT NULL, -- XYDBDCDYH 需役地
    content           text NOT NULL,      -- 地役权内容
    easement_start    date,
    easement_end      date
);

-- 注销登记 QLF_QL_ZXDJ
CREATE TABLE cad.cancellation_detail (
    right_version_id   bigint PRIMARY KEY REFERENCES cad.right_record(version_id),
    cancelled_right_id uuid NOT NULL,     -- the right that was cancelled
    reason             text NOT NULL,     -- ZXYY
    cancelled_at       timestamptz NOT NULL  -- ZXSJ
);

-- Deliberate defects planted by the demo generator, so QA can be checked against them.
CREATE TABLE cad.demo_defect (
    id           serial PRIMARY KEY,
    kind         text NOT NULL,           -- overlap | sliver_gap | area_discrepancy
    parcel_codes char(19)[] NOT NULL,
    measure      double precision NOT NULL,  -- m² of overlap/gap, or relative area difference
    note         text
);
