#!/usr/bin/env python3
"""Generate the bundled, synthetic dataset-search benchmark in BEIR layout.

    python examples/data/generate_datasets.py --out examples/data/datasets --seed 13

Everything comes from the vocabularies below and one seeded numpy Generator, so the same
seed always writes byte-identical files. Pure Python + numpy.

Generative structure
--------------------
* A *topic* (e.g. "HDB resale prices") belongs to one *domain* (housing). Each topic has
  title phrases (the catalogue's official wording), description phrases, and query
  paraphrases written the way users ask (mostly NOT sharing words with the titles).
* A catalogue item is (topic, region, source, granularity, variant, years), with a title and
  description rendered from templates. Sources are compatible with region and domain
  (LTA DataMall only publishes Singapore transport data, WHO only health, ...).
* A query is an intent (topic, optional region, optional source, optional granularity)
  rendered from paraphrase templates with noise: synonyms, filler words, region words
  ("singapore", "sg", "s'pore"), occasional typos.
* Graded relevance (0-4) is a function of the intent and the item only:
    same topic -> 4, same domain but other topic -> 1, other domain -> 0; then
    region asked and item region differs: -1 if the item's region contains the asked one
    (Singapore is inside ASEAN, Asia-Pacific, Global), else -2;
    source asked and item source differs: -1; granularity asked and differs: -1;
    clipped to [0, 4].
  Judged per query: every item of the intent's topic, 4 items of the same domain, 4 random
  items of other domains and 2 lexical hard negatives (other-domain items sharing a word
  with the query). Unjudged items count as non-relevant, as in trec_eval.
* Queries are split 70/15/15 into train/dev/test.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- vocabularies

# topic key -> (domain, title phrases, description phrases, query paraphrases, variants)
TOPICS: dict[str, tuple[str, list[str], list[str], list[str], list[str]]] = {
    # housing
    "hdb_resale": (
        "housing",
        ["HDB Resale Flat Prices", "Resale Flat Transactions", "Public Housing Resale Prices"],
        [
            "registered resale transactions of public housing flats with floor area, storey range and lease",
            "resale flat prices by town and flat type based on registration date",
        ],
        [
            "how much do second-hand government apartments sell for",
            "cost of buying a used public apartment",
            "secondhand hdb home values",
            "what buyers paid for older government homes",
            "pre-owned flat sale amounts",
            "selling price of used 4-room homes",
        ],
        ["by town", "by flat type", "by storey range"],
    ),
    "rental": (
        "housing",
        ["Private Residential Rental Index", "Median Rents of Residential Properties", "Rental Contracts"],
        [
            "median monthly rent of residential properties by district and unit size",
            "rental contracts submitted for private residential properties",
        ],
        [
            "how expensive is it to lease a condo",
            "monthly cost to rent an apartment",
            "tenancy charges for homes",
            "what landlords charge tenants",
            "renting a room cost",
        ],
        ["by district", "by unit size", "by postal district"],
    ),
    "bto_supply": (
        "housing",
        ["Build-To-Order Flat Launches", "New Flat Supply", "BTO Application Rates"],
        [
            "launches of build-to-order flats with number of units and application rates",
            "supply of new public housing units by estate and completion year",
        ],
        [
            "upcoming new government homes",
            "when will brand new public apartments be ready",
            "waiting time for newly built homes",
            "oversubscription of fresh housing launches",
            "new estate completion schedule",
        ],
        ["by estate", "by completion year", "by flat type"],
    ),
    "property_index": (
        "housing",
        ["Private Property Price Index", "Condominium Price Index", "Residential Property Price Index"],
        [
            "price index of private residential properties by market segment",
            "quarterly index of condominium and landed property prices",
        ],
        [
            "how condo values changed over time",
            "luxury home value trends",
            "landed house valuation trend",
            "is the real estate market going up",
            "private home market movement",
        ],
        ["by market segment", "by property type", "core central region"],
    ),
    # transport
    "bus_ridership": (
        "transport",
        ["Bus Ridership", "Passenger Volume by Bus Stop", "Public Bus Passenger Trips"],
        [
            "passenger volume by bus stop and hour from fare card taps",
            "number of trips made on public buses by service and origin-destination",
        ],
        [
            "how many people take the bus",
            "commuters boarding at each stop",
            "tap-in counts on buses",
            "busiest stops for commuters",
            "how crowded are the buses",
        ],
        ["by bus stop", "by service", "origin-destination"],
    ),
    "mrt_ridership": (
        "transport",
        ["MRT and LRT Ridership", "Train Station Passenger Volume", "Rail Transit Ridership"],
        [
            "average daily ridership on rail lines and station entry-exit volumes",
            "passenger volume by train station from fare card data",
        ],
        [
            "how many commuters use the subway",
            "metro station crowd numbers",
            "underground line usage",
            "busiest subway stops",
            "people riding the metro each day",
        ],
        ["by station", "by line", "origin-destination"],
    ),
    "traffic_incidents": (
        "transport",
        ["Traffic Incidents", "Road Accidents", "Traffic Incident Reports"],
        [
            "reported incidents on expressways including accidents, vehicle breakdowns and roadworks",
            "road traffic accident casualties by type of road user",
        ],
        [
            "car crashes on highways",
            "collisions on the expressway",
            "where do motor accidents happen",
            "vehicle breakdown reports",
            "crash casualties on roads",
        ],
        ["by expressway", "by road user type", "by severity"],
    ),
    "carpark": (
        "transport",
        ["Carpark Availability", "Car Park Lots Availability", "Parking Lot Occupancy"],
        [
            "available lots at car parks in housing estates, malls and major developments",
            "occupancy of parking facilities updated every minute",
        ],
        [
            "free spots to leave my vehicle",
            "empty parking spaces nearby",
            "where to park the car",
            "vacant lots at shopping centre garages",
            "how full are garages",
        ],
        ["by car park", "by development", "by lot type"],
    ),
    "coe": (
        "transport",
        ["Certificate of Entitlement Premiums", "COE Bidding Results", "Vehicle Quota Premiums"],
        [
            "bidding results of vehicle quota premiums by category and bidding exercise",
            "quota premium, bids received and successful bids",
        ],
        [
            "how much it costs for the right to own a car",
            "car ownership permit price",
            "latest bidding price to buy a car licence",
            "motor vehicle entitlement cost",
            "price of owning a car",
        ],
        ["by vehicle category", "by bidding exercise", "category a and b"],
    ),
    # health
    "hospital_admissions": (
        "health",
        ["Hospital Admissions", "Inpatient Discharges", "Hospital Bed Occupancy"],
        [
            "admissions and discharges at public hospitals with bed occupancy rates",
            "inpatient episodes by hospital and diagnosis group",
        ],
        [
            "how many patients are warded",
            "people staying overnight in clinics and wards",
            "ward occupancy for the sick",
            "inpatient stays",
            "how full are the wards",
        ],
        ["by hospital", "by diagnosis", "by age group"],
    ),
    "dengue": (
        "health",
        ["Dengue Cases", "Dengue Clusters", "Weekly Infectious Disease Bulletin"],
        [
            "notified dengue cases and active cluster locations",
            "weekly counts of notifiable infectious diseases",
        ],
        [
            "mosquito-borne fever outbreaks",
            "aedes mosquito outbreak areas",
            "where are people getting dengue",
            "infections spread by mosquitoes",
            "tropical fever case counts",
        ],
        ["by cluster", "by epidemiological week", "by disease"],
    ),
    "life_expectancy": (
        "health",
        ["Life Expectancy at Birth", "Mortality Rates", "Life Tables"],
        [
            "life expectancy at birth and at age 65 by sex",
            "complete life tables with age-specific death rates",
        ],
        [
            "how long do people live",
            "average lifespan of residents",
            "death rate by age",
            "longevity statistics",
            "how old do people get before dying",
        ],
        ["by sex", "by age", "by ethnic group"],
    ),
    "healthcare_costs": (
        "health",
        ["Healthcare Expenditure", "Hospital Bill Sizes", "Government Health Expenditure"],
        [
            "national health expenditure as share of gdp and per capita",
            "typical hospital bill sizes by condition and ward class",
        ],
        [
            "how much does medical treatment cost",
            "doctor and surgery fees",
            "spending on medicine and care",
            "cost of being treated",
            "medical bills for operations",
        ],
        ["by ward class", "by condition", "per capita"],
    ),
    # economy
    "gdp": (
        "economy",
        ["Gross Domestic Product", "GDP at Current Prices", "GDP by Industry"],
        [
            "gross domestic product in chained dollars and at current market prices",
            "value added by industry and expenditure components",
        ],
        [
            "size of the economy",
            "national output growth",
            "how fast is the economy growing",
            "total value of goods and services produced",
            "economic growth figures",
        ],
        ["by industry", "by expenditure", "chained volume"],
    ),
    "cpi": (
        "economy",
        ["Consumer Price Index", "CPI by Household Expenditure", "Inflation Rate"],
        [
            "consumer price index by division of household expenditure",
            "year-on-year change in consumer prices",
        ],
        [
            "cost of living increase",
            "how fast are everyday things getting pricier",
            "grocery bill going up",
            "rising living expenses",
            "purchasing power erosion",
        ],
        ["by expenditure division", "core and headline", "by income group"],
    ),
    "trade": (
        "economy",
        ["Merchandise Trade", "Imports and Exports", "Non-Oil Domestic Exports"],
        [
            "merchandise imports and exports by commodity section and trading partner",
            "non-oil domestic exports by destination",
        ],
        [
            "goods shipped overseas",
            "what the country sells abroad",
            "overseas shipments of products",
            "foreign commerce volumes",
            "goods bought from other countries",
        ],
        ["by commodity", "by trading partner", "by market"],
    ),
    "retail_sales": (
        "economy",
        ["Retail Sales Index", "Food and Beverage Services Index", "Retail Sales Value"],
        [
            "retail sales index at current and constant prices by industry",
            "sales of food and beverage services establishments",
        ],
        [
            "how much shoppers spend in stores",
            "shop takings",
            "restaurant and cafe revenue",
            "consumer spending at malls",
            "how busy are shops",
        ],
        ["by industry", "at constant prices", "by outlet type"],
    ),
    # environment
    "air_quality": (
        "environment",
        ["Air Quality Readings", "PSI Readings", "PM2.5 Concentration"],
        [
            "pollutant standards index and fine particulate matter concentration by region",
            "hourly readings of pollutants from monitoring stations",
        ],
        [
            "how hazy is it outside",
            "haze levels",
            "smog and pollution today",
            "is the air safe to breathe",
            "dust and smoke in the atmosphere",
        ],
        ["by region", "by pollutant", "by monitoring station"],
    ),
    "rainfall": (
        "environment",
        ["Rainfall", "Weather Station Precipitation", "Climate Records"],
        [
            "total rainfall and number of rain days recorded at climate stations",
            "precipitation measured by weather stations",
        ],
        [
            "how much does it rain",
            "wet weather records",
            "amount of showers and storms",
            "downpour history",
            "monsoon water totals",
        ],
        ["by station", "by month of year", "rain days"],
    ),
    "recycling": (
        "environment",
        ["Waste Statistics and Recycling Rates", "Solid Waste Disposed", "Recycling Rate by Waste Type"],
        [
            "waste generated, recycled and disposed by waste type",
            "recycling rates for plastics, paper, food and construction waste",
        ],
        [
            "how much rubbish gets reused",
            "garbage thrown away",
            "trash and landfill amounts",
            "plastic reuse percentage",
            "how much junk people throw out",
        ],
        ["by waste type", "domestic and non-domestic", "by sector"],
    ),
    "emissions": (
        "environment",
        ["Greenhouse Gas Emissions", "Carbon Dioxide Emissions", "Emissions by Sector"],
        [
            "greenhouse gas emissions in tonnes of carbon dioxide equivalent by sector",
            "national emissions inventory",
        ],
        [
            "carbon footprint of the country",
            "climate pollution output",
            "co2 released by factories and cars",
            "how much global warming gas is produced",
            "net zero progress",
        ],
        ["by sector", "by gas", "per capita"],
    ),
    # education
    "school_enrolment": (
        "education",
        ["School Enrolment", "Enrolment in Primary and Secondary Schools", "Student Enrolment"],
        [
            "number of students enrolled in primary, secondary and junior college levels",
            "enrolment by level and school type",
        ],
        [
            "how many kids attend classes",
            "pupils going to primary",
            "children in classrooms",
            "number of learners by grade",
            "how many children study",
        ],
        ["by level", "by school type", "by sex"],
    ),
    "university_graduates": (
        "education",
        ["Graduate Employment Survey", "University Graduates", "Tertiary Graduates by Field"],
        [
            "employment rates and salaries of fresh graduates by degree programme",
            "graduates from universities and polytechnics by field of study",
        ],
        [
            "starting pay of fresh degree holders",
            "do college leavers find jobs",
            "alumni salaries after campus",
            "which degrees pay well",
            "jobs for people leaving uni",
        ],
        ["by degree", "by institution", "by field of study"],
    ),
    "schools_directory": (
        "education",
        ["General Information of Schools", "School Directory", "List of Schools"],
        [
            "address, contact details and programmes offered by each school",
            "directory of primary, secondary and pre-university institutions",
        ],
        [
            "where are the nearest places to study",
            "addresses of places kids learn",
            "which institutions offer special programmes",
            "contact info for academies",
            "find a kindergarten near me",
        ],
        ["by zone", "by level", "with programmes"],
    ),
    # population
    "population_estimates": (
        "population",
        ["Population Estimates", "Resident Population by Age", "Population in Brief"],
        [
            "resident population by age group, sex and ethnic group as at june",
            "total, resident and non-resident population estimates",
        ],
        [
            "how many people live here",
            "number of residents",
            "headcount of inhabitants",
            "demographic size",
            "how big is the populace",
        ],
        ["by age group", "by ethnic group", "by sex"],
    ),
    "births_deaths": (
        "population",
        ["Births and Fertility", "Total Fertility Rate", "Registered Births and Deaths"],
        [
            "live births, total fertility rate and registered deaths",
            "fertility rate by ethnic group and age of mother",
        ],
        [
            "how many babies are born",
            "newborn counts",
            "are couples having fewer children",
            "childbearing trends",
            "baby boom or bust",
        ],
        ["by ethnic group", "by age of mother", "by birth order"],
    ),
    "planning_area_pop": (
        "population",
        ["Population by Planning Area", "Residents by Subzone", "Population Distribution by Town"],
        [
            "resident population by planning area, subzone and type of dwelling",
            "distribution of residents across towns and subzones",
        ],
        [
            "which neighbourhoods are most crowded",
            "people per estate",
            "how dense is each district",
            "where do most people stay",
            "headcount per neighbourhood",
        ],
        ["by planning area", "by subzone", "by dwelling type"],
    ),
    "migration": (
        "population",
        ["International Migration", "Migrant Stock", "Citizenship Grants"],
        [
            "international migrant stock and net migration",
            "new citizenships and permanent residencies granted",
        ],
        [
            "people moving in from abroad",
            "foreigners settling down",
            "immigrants and emigrants",
            "new passport holders",
            "cross-border movement of people",
        ],
        ["by country of origin", "by type of pass", "net flows"],
    ),
    # labour
    "unemployment": (
        "labour",
        ["Unemployment Rate", "Labour Force Participation", "Labour Force Survey"],
        [
            "seasonally adjusted unemployment rate and labour force participation",
            "labour force by age, sex and education",
        ],
        [
            "how many people are out of work",
            "jobless numbers",
            "people looking for a job",
            "share of workers without employment",
            "retrenched and idle workers",
        ],
        ["by age", "by education", "seasonally adjusted"],
    ),
    "wages": (
        "labour",
        ["Median Gross Monthly Income", "Wages by Occupation", "Occupational Wage Survey"],
        [
            "median gross monthly income from work of full-time employed residents",
            "basic and gross wages by occupation and industry",
        ],
        [
            "how much do workers earn",
            "typical salary",
            "take-home pay levels",
            "what jobs pay",
            "pay packets by profession",
        ],
        ["by occupation", "by industry", "by percentile"],
    ),
    "job_vacancies": (
        "labour",
        ["Job Vacancies", "Vacancy Rate by Industry", "Job Vacancy Survey"],
        [
            "job vacancies and vacancy rates by industry and occupation",
            "number of unfilled positions reported by employers",
        ],
        [
            "open positions employers want to fill",
            "how many openings are there",
            "hiring demand",
            "unfilled roles at companies",
            "who is recruiting",
        ],
        ["by industry", "by occupation", "by firm size"],
    ),
    # tourism
    "visitor_arrivals": (
        "tourism",
        ["International Visitor Arrivals", "Tourist Arrivals", "Visitor Arrivals by Country"],
        [
            "visitor arrivals by country of residence and length of stay",
            "international tourist arrivals and receipts",
        ],
        [
            "how many holidaymakers come",
            "foreign travellers landing",
            "sightseers from overseas",
            "vacation trips into the country",
            "people flying in for holidays",
        ],
        ["by country of residence", "by length of stay", "by purpose"],
    ),
    "hotel_occupancy": (
        "tourism",
        ["Hotel Occupancy Rate", "Hotel Statistics", "Average Room Rate"],
        [
            "hotel room occupancy, average room rate and revenue per available room",
            "gazetted hotel statistics by tier",
        ],
        [
            "how full are places to stay",
            "lodging nightly price",
            "accommodation booking levels",
            "how pricey is a night's stay",
            "inns and resorts filled",
        ],
        ["by tier", "by hotel type", "room revenue"],
    ),
    # energy
    "electricity": (
        "energy",
        ["Electricity Consumption", "Electricity Generation", "Power Consumption by Sector"],
        [
            "electricity consumption by sector and household dwelling type",
            "electricity generation and peak system demand",
        ],
        [
            "how much power do homes use",
            "household energy usage",
            "kilowatt hours consumed",
            "power bills and usage",
            "demand on the grid",
        ],
        ["by sector", "by dwelling type", "peak demand"],
    ),
    "fuel_prices": (
        "energy",
        ["Retail Pump Prices", "Petrol Prices", "Fuel Prices"],
        ["retail pump prices of petrol and diesel by grade", "monthly average fuel prices at stations"],
        [
            "cost to fill up the tank",
            "gasoline cost",
            "how expensive is diesel",
            "what stations charge per litre",
            "octane 95 price",
        ],
        ["by grade", "by company", "diesel and petrol"],
    ),
    "solar": (
        "energy",
        ["Solar Photovoltaic Installations", "Installed Solar Capacity", "Renewable Energy Capacity"],
        [
            "installed capacity of grid-connected solar photovoltaic systems",
            "renewable energy installations by technology",
        ],
        [
            "rooftop panels harvesting sunlight",
            "green power from the sun",
            "clean energy panels installed",
            "how much sunshine power is there",
            "sun-powered electricity",
        ],
        ["by planning region", "by user type", "by technology"],
    ),
    # psychology and social science (research data)
    "psych_survey": (
        "psychology",
        [
            "Psychology Research Survey Data",
            "Personality and Wellbeing Survey",
            "Psychological Experiment Responses",
        ],
        [
            "participant responses from psychology research studies on personality, wellbeing and cognition",
            "anonymised participant-level data from behavioural psychology experiments",
        ],
        [
            "how do people feel about their lives",
            "participant answers from behaviour experiments",
            "personality test answers",
            "mental wellbeing questionnaire results",
            "data from studies of the mind",
        ],
        ["by study", "by age group", "by country"],
    ),
    "social_attitudes": (
        "psychology",
        ["Social Attitudes Survey", "Social Science Survey Microdata", "Public Opinion and Values Survey"],
        [
            "individual responses on social attitudes, trust and values for social science research",
            "social science survey microdata on households, attitudes and behaviour",
        ],
        [
            "what do people think about society",
            "public opinion poll answers",
            "trust in institutions questionnaire",
            "values and beliefs of citizens",
            "sociology questionnaire responses",
        ],
        ["by wave", "by country", "by demographic group"],
    ),
    # machine learning and AI (research data)
    "ml_benchmark": (
        "machine_learning",
        [
            "Machine Learning Benchmark Datasets",
            "Labelled Image Classification Dataset",
            "Machine Learning Training Data",
        ],
        [
            "labelled examples with train and test splits for benchmarking machine learning models",
            "annotated images and tabular records for supervised machine learning",
        ],
        [
            "data to train an ai model",
            "labelled examples for a classifier",
            "benchmark to compare algorithms",
            "training set for deep learning",
            "examples to fit a neural network",
        ],
        ["image classification", "tabular", "with train-test split"],
    ),
    "nlp_corpus": (
        "machine_learning",
        [
            "Text Corpus for Natural Language Processing",
            "Annotated Sentiment Corpus",
            "Language Model Training Text",
        ],
        [
            "annotated text documents for natural language processing and machine learning",
            "sentences labelled with sentiment and named entities for training language models",
        ],
        [
            "text to teach a chatbot",
            "labelled reviews for sentiment analysis",
            "sentences for training language models",
            "documents for teaching computers to read",
        ],
        ["english", "multilingual", "with annotations"],
    ),
    # climate
    "climate_indicators": (
        "climate",
        [
            "Climate Change Indicators",
            "Temperature Anomalies and Sea Level Rise",
            "Global Warming Indicators",
        ],
        [
            "indicators of climate change: surface temperature anomalies, sea level and greenhouse gas "
            "concentrations",
            "long-run climate change series of temperature and extreme weather events",
        ],
        [
            "how fast is the planet warming",
            "rising sea levels over the decades",
            "global temperature increase",
            "evidence of global heating",
            "extreme weather becoming more common",
        ],
        ["by country", "by indicator", "long-run series"],
    ),
    "forest_cover": (
        "climate",
        ["Forest Area and Deforestation", "Land Cover Change", "Tree Cover Loss"],
        [
            "forest area, tree cover loss and land cover change from satellite observation",
            "deforestation and reforestation by land cover class",
        ],
        [
            "how much forest is being cut down",
            "loss of trees over time",
            "rainforest destruction figures",
            "land cleared for farming",
        ],
        ["by country", "by land cover class", "by year"],
    ),
    # health research
    "health_survey": (
        "health",
        ["Health and Nutrition Survey Microdata", "Public Health Research Dataset", "Clinical Study Data"],
        [
            "participant-level health, nutrition and lifestyle survey data for public health research",
            "de-identified clinical study records with outcomes and risk factors",
        ],
        [
            "research data on patients' lifestyles",
            "diet and exercise study records",
            "anonymised medical study participants",
            "epidemiology study data",
        ],
        ["by cohort", "by risk factor", "by age group"],
    ),
}

# region -> (share of catalogue, words in titles, words users type)
REGIONS: dict[str, tuple[float, list[str], list[str]]] = {
    "Singapore": (
        0.50,
        ["Singapore", ""],
        [
            "in singapore",
            "singapore",
            "sg",
            "in sg",
            "s'pore",
            "for spore",
            "singapore's",
            "across singapore",
        ],
    ),
    "Malaysia": (0.08, ["Malaysia"], ["in malaysia", "malaysia", "malaysian"]),
    "Indonesia": (0.06, ["Indonesia"], ["in indonesia", "indonesian", "indonesia"]),
    "Thailand": (0.05, ["Thailand"], ["in thailand", "thai", "thailand"]),
    "ASEAN": (
        0.10,
        ["ASEAN", "Southeast Asia"],
        ["in asean", "across southeast asia", "asean countries", "south-east asian"],
    ),
    "Asia-Pacific": (0.05, ["Asia-Pacific"], ["in asia pacific", "apac", "asia-pacific"]),
    "Global": (
        0.16,
        ["Global", "World", "Cross-Country"],
        ["worldwide", "globally", "around the world", "international comparison", "all countries"],
    ),
}
# regions that contain a given region (asking for Singapore, an ASEAN table is "near")
CONTAINS: dict[str, set[str]] = {
    "Singapore": {"ASEAN", "Asia-Pacific", "Global"},
    "Malaysia": {"ASEAN", "Asia-Pacific", "Global"},
    "Indonesia": {"ASEAN", "Asia-Pacific", "Global"},
    "Thailand": {"ASEAN", "Asia-Pacific", "Global"},
    "ASEAN": {"Asia-Pacific", "Global"},
    "Asia-Pacific": {"Global"},
    "Global": set(),
}

# the official-statistics domains (research-data domains are published by research portals)
OFFICIAL_DOMAINS = {
    "transport", "housing", "health", "economy", "environment", "education",
    "population", "labour", "tourism", "energy", "climate",
}  # fmt: skip
# source slug -> display name
SOURCE_NAMES: dict[str, str] = {
    "data_gov_sg": "data.gov.sg",
    "singstat": "SingStat",
    "lta_datamall": "LTA DataMall",
    "onemap": "OneMap",
    "ura": "URA",
    "moh": "MOH",
    "nea": "NEA",
    "ema": "EMA",
    "world_bank": "World Bank",
    "who": "WHO",
    "oecd": "OECD",
    "un_data": "UN Data",
    "aseanstats": "ASEANstats",
    "adb": "ADB",
    "dosm": "DOSM",
    "bps": "BPS",
    "nso_thailand": "NSO Thailand",
    "kaggle": "Kaggle",
    "zenodo": "Zenodo",
}
# source slug -> (regions, domains or None for any, words users type)
SOURCES: dict[str, tuple[set[str], set[str] | None, list[str]]] = {
    "data_gov_sg": (
        {"Singapore"},
        OFFICIAL_DOMAINS,
        ["data.gov.sg", "datagov sg", "the government data portal"],
    ),
    "singstat": (
        {"Singapore"},
        {"economy", "population", "labour", "housing", "tourism", "education"},
        ["singstat", "department of statistics", "dos"],
    ),
    "lta_datamall": ({"Singapore"}, {"transport"}, ["lta datamall", "datamall", "lta"]),
    "onemap": ({"Singapore"}, {"population", "education", "housing", "environment"}, ["onemap", "one map"]),
    "ura": ({"Singapore"}, {"housing"}, ["ura", "urban redevelopment authority"]),
    "moh": ({"Singapore"}, {"health"}, ["moh", "ministry of health"]),
    "nea": ({"Singapore"}, {"environment", "health", "climate"}, ["nea", "environment agency"]),
    "ema": ({"Singapore"}, {"energy"}, ["ema", "energy market authority"]),
    "world_bank": (
        {"Global", "ASEAN", "Asia-Pacific", "Malaysia", "Indonesia", "Thailand"},
        {"economy", "population", "health", "education", "environment", "energy", "labour", "climate"},
        ["world bank", "worldbank", "wdi"],
    ),
    "who": ({"Global", "Asia-Pacific"}, {"health"}, ["who gho", "world health organization"]),
    "oecd": ({"Global"}, {"economy", "labour", "education", "environment", "tourism"}, ["oecd"]),
    "un_data": ({"Global", "ASEAN", "Asia-Pacific"}, OFFICIAL_DOMAINS, ["un data", "united nations"]),
    "aseanstats": ({"ASEAN"}, OFFICIAL_DOMAINS, ["aseanstats", "asean statistics"]),
    "adb": (
        {"Asia-Pacific", "ASEAN"},
        {"economy", "energy", "transport", "environment"},
        ["adb", "asian development bank"],
    ),
    "dosm": ({"Malaysia"}, OFFICIAL_DOMAINS, ["dosm", "statistics malaysia"]),
    "bps": ({"Indonesia"}, OFFICIAL_DOMAINS, ["bps", "statistics indonesia"]),
    "nso_thailand": ({"Thailand"}, OFFICIAL_DOMAINS, ["nso thailand", "thai statistical office"]),
    "kaggle": (set(REGIONS), None, ["kaggle"]),
    "zenodo": (set(REGIONS), None, ["zenodo"]),
}
RESEARCH_PORTALS = ("kaggle", "zenodo")
# research data is mostly not about one country
MOSTLY_GLOBAL = {"psych_survey", "social_attitudes", "ml_benchmark", "nlp_corpus", "climate_indicators"}

# granularity -> (title word, words users type)
GRANULARITIES: dict[str, tuple[str, list[str]]] = {
    "daily": ("Daily", ["daily", "per day", "day by day", "each day"]),
    "monthly": ("Monthly", ["monthly", "per month", "month by month", "each month"]),
    "quarterly": ("Quarterly", ["quarterly", "every quarter", "per quarter"]),
    "annual": ("Annual", ["yearly", "annual", "per year", "each year"]),
    "real-time": ("Real-Time", ["live feed", "real-time", "right now", "up to the minute"]),
}
DOMAIN_GRANULARITIES: dict[str, list[str]] = {
    "transport": ["real-time", "daily", "monthly", "annual"],
    "environment": ["real-time", "daily", "monthly", "annual"],
    "health": ["daily", "monthly", "annual"],
    "psychology": ["annual"],
    "machine_learning": ["annual"],
    "climate": ["monthly", "annual"],
}
DEFAULT_GRANULARITIES = ["monthly", "quarterly", "annual"]
# topics that mostly exist only for Singapore (HDB, BTO, COE, planning areas)
SINGAPORE_ONLY = {"hdb_resale", "bto_supply", "coe", "planning_area_pop"}

# share of queries written with the catalogue's own words (keyword search) rather than a paraphrase
KEYWORD_SHARE = 0.35
QUERY_PREFIXES = [
    "",
    "",
    "",
    "",
    "i need",
    "looking for",
    "find",
    "data on",
    "dataset about",
    "where can i get",
    "show me",
    "any stats on",
    "statistics for",
    "open data:",
    "info on",
    "need figures on",
    "numbers on",
]
QUERY_SUFFIXES = [
    "",
    "",
    "",
    "",
    "",
    "dataset",
    "data",
    "csv",
    "stats",
    "please",
    "for my project",
    "for research",
    "latest",
]
SYNONYMS: dict[str, list[str]] = {
    "how many": ["number of", "count of", "how many"],
    "cost": ["price", "cost", "expense"],
    "people": ["folks", "persons", "people"],
    "homes": ["houses", "dwellings", "homes"],
    "car": ["car", "vehicle", "auto"],
    "much": ["much", "much"],
    "buy": ["purchase", "buy"],
    "price": ["price", "cost"],
    "workers": ["employees", "workers", "staff"],
    "kids": ["children", "kids"],
}
DESCRIPTION_EXTRAS = [
    "Data are provisional for the latest period.",
    "Figures may not add up due to rounding.",
    "Updated when new releases are published.",
    "Includes metadata and a data dictionary.",
    "Licensed under an open data licence.",
    "Historical series revised in the latest release.",
    "",
]


@dataclass(frozen=True)
class Item:
    id: str
    topic: str
    domain: str
    region: str
    source: str
    granularity: str
    title: str
    description: str


@dataclass(frozen=True)
class Intent:
    topic: str
    region: str | None
    source: str | None
    granularity: str | None


def choice(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def sources_for(region: str, domain: str) -> list[str]:
    out = []
    for name, (regions, domains, _) in SOURCES.items():
        if region in regions and (domains is None or domain in domains):
            out.append(name)
    return out


def make_catalog(rng: np.random.Generator, n_items: int) -> list[Item]:
    topic_keys = list(TOPICS)
    region_names = list(REGIONS)
    region_p = np.array([REGIONS[r][0] for r in region_names])
    region_p = region_p / region_p.sum()
    items: list[Item] = []
    seen_titles: set[str] = set()
    attempts = 0
    while len(items) < n_items:
        attempts += 1
        if attempts > n_items * 50:
            raise RuntimeError("could not generate enough distinct catalogue items")
        topic = topic_keys[len(items) % len(topic_keys)] if rng.random() < 0.7 else choice(rng, topic_keys)
        domain, titles, descs, _queries, variants = TOPICS[topic]
        region = region_names[int(rng.choice(len(region_names), p=region_p))]
        if topic in SINGAPORE_ONLY and rng.random() < 0.85:
            region = "Singapore"
        if topic in MOSTLY_GLOBAL and rng.random() < 0.7:
            region = "Global"
        srcs = sources_for(region, domain)
        # prefer specialised publishers over Kaggle/Zenodo, except for research data, where
        # they are the publishers (and machine-learning data lives on Kaggle first)
        official = domain in OFFICIAL_DOMAINS
        weights = np.array(
            [
                (0.35 if official else 1.0 if s == "kaggle" or domain != "machine_learning" else 0.5)
                if s in RESEARCH_PORTALS
                else 1.0
                for s in srcs
            ]
        )
        source = srcs[int(rng.choice(len(srcs), p=weights / weights.sum()))]
        gran = choice(rng, DOMAIN_GRANULARITIES.get(domain, DEFAULT_GRANULARITIES))
        variant = choice(rng, variants)
        start = int(rng.integers(1990, 2018))
        end = int(rng.integers(max(start + 2, 2015), 2026))
        base = choice(rng, titles)
        region_word = choice(rng, REGIONS[region][1])
        gran_word = GRANULARITIES[gran][0]
        form = int(rng.integers(4))
        if form == 0:
            title = f"{base}, {variant.capitalize()} ({gran_word})"
        elif form == 1:
            title = f"{gran_word} {base} {variant}"
        elif form == 2:
            title = f"{base} {variant}, {start}-{end}"
        else:
            title = f"{base} ({gran_word}, {start}-{end})"
        if region_word:
            title = f"{region_word} {title}" if rng.random() < 0.5 else f"{title} - {region_word}"
        title = re.sub(r"\s+", " ", title).strip()
        if title in seen_titles:
            continue
        seen_titles.add(title)
        where = {
            "Singapore": "Singapore",
            "Global": "countries worldwide",
            "ASEAN": "ASEAN member states",
            "Asia-Pacific": "economies in Asia and the Pacific",
        }.get(region, region)
        desc = (
            f"{gran_word} {choice(rng, descs)} {variant}, {where}, {start} to {end}. "
            f"Published by {SOURCE_NAMES[source]}. {choice(rng, DESCRIPTION_EXTRAS)}"
        ).strip()
        items.append(
            Item(
                id=f"ds-{len(items):05d}",
                topic=topic,
                domain=domain,
                region=region,
                source=source,
                granularity=gran,
                title=title,
                description=desc,
            )
        )
    return items


def grade(intent: Intent, item: Item) -> int:
    domain = TOPICS[intent.topic][0]
    if item.topic == intent.topic:
        g = 4
    elif item.domain == domain:
        g = 1
    else:
        return 0
    if intent.region is not None and item.region != intent.region:
        g -= 1 if item.region in CONTAINS[intent.region] else 2
    if intent.source is not None and item.source != intent.source:
        g -= 1
    if intent.granularity is not None and item.granularity != intent.granularity:
        g -= 1
    return max(0, min(4, g))


# The operations runbook's compliance queries and its daily test queries, judged like the rest
# (graded against intents that name several topics) and always in the test split, so the
# artifact's golden set holds them. (text, topics any of which is a perfect answer, region)
RUNBOOK_QUERIES: list[tuple[str, tuple[str, ...], str | None]] = [
    ("psychology research data", ("psych_survey", "social_attitudes"), None),
    ("singapore housing prices", ("hdb_resale", "property_index"), "Singapore"),
    ("climate change indicators", ("climate_indicators",), None),
    ("machine learning datasets", ("ml_benchmark", "nlp_corpus"), None),
    ("singapore housing data", ("hdb_resale", "rental", "bto_supply", "property_index"), "Singapore"),
    ("psychology research", ("psych_survey", "social_attitudes"), None),
    ("climate change", ("climate_indicators", "forest_cover"), None),
]


def grade_topics(topics: tuple[str, ...], region: str | None, item: Item) -> int:
    """``grade`` for an intent any of whose ``topics`` answers it perfectly."""
    return max(grade(Intent(t, region, None, None), item) for t in topics)


def runbook_queries(rng: np.random.Generator, items: list[Item]) -> list[tuple[str, str, dict[str, int]]]:
    out = []
    for n, (text, topics, region) in enumerate(RUNBOOK_QUERIES, 1):
        domains = {TOPICS[t][0] for t in topics}
        judged = {it.id: grade_topics(topics, region, it) for it in items if it.domain in domains}
        others = [it for it in items if it.domain not in domains]
        for j in rng.permutation(len(others))[:8]:
            judged[others[int(j)].id] = 0
        out.append((f"q-runbook-{n}", text, judged))
    return out


def typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 5 or not word.isalpha():
        return word
    i = int(rng.integers(1, len(word) - 2))
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


# short keyword searches people type for a topic (besides words of the official titles)
TOPIC_KEYWORDS: dict[str, list[str]] = {
    "hdb_resale": ["housing prices", "hdb prices", "resale prices", "hdb resale", "flat prices"],
    "rental": ["rents", "rental prices", "condo rent", "rental market"],
    "bto_supply": ["bto", "bto launches", "new flats", "housing supply"],
    "property_index": ["property prices", "condo prices", "property market", "home prices index"],
    "bus_ridership": ["bus ridership", "bus passengers", "bus usage"],
    "mrt_ridership": ["mrt ridership", "train ridership", "mrt passengers", "subway ridership"],
    "traffic_incidents": ["traffic accidents", "road accidents", "accidents", "road safety"],
    "carpark": ["carpark", "parking", "car park lots", "parking availability"],
    "coe": ["coe prices", "coe", "coe premium", "car quota prices"],
    "hospital_admissions": ["hospital admissions", "bed occupancy", "hospital beds"],
    "dengue": ["dengue", "dengue cases", "dengue clusters"],
    "life_expectancy": ["life expectancy", "mortality", "death rates"],
    "healthcare_costs": ["healthcare costs", "medical costs", "health spending", "hospital bills"],
    "gdp": ["gdp", "gdp growth", "economic growth", "economy size"],
    "cpi": ["inflation", "cpi", "consumer prices", "cost of living"],
    "trade": ["exports", "imports", "trade", "trade statistics"],
    "retail_sales": ["retail sales", "shopping spend", "f&b sales"],
    "air_quality": ["air quality", "haze", "air pollution", "psi"],
    "rainfall": ["rainfall", "rain", "weather records"],
    "recycling": ["recycling", "waste", "recycling rate", "landfill"],
    "emissions": ["emissions", "carbon emissions", "co2", "greenhouse gases"],
    "school_enrolment": ["school enrolment", "students", "enrolment"],
    "university_graduates": ["graduate salaries", "graduate employment", "university graduates"],
    "schools_directory": ["list of schools", "school locations", "schools"],
    "population_estimates": ["population", "population size", "residents"],
    "births_deaths": ["births", "fertility rate", "birth rate"],
    "planning_area_pop": ["population by town", "population density", "residents by area"],
    "migration": ["migration", "immigration", "migrants"],
    "unemployment": ["unemployment", "unemployment rate", "jobless rate"],
    "wages": ["wages", "salaries", "income", "salary by occupation"],
    "job_vacancies": ["job vacancies", "vacancies", "job openings"],
    "visitor_arrivals": ["tourist arrivals", "tourism", "visitor arrivals", "tourists"],
    "hotel_occupancy": ["hotel occupancy", "hotel rates", "hotels"],
    "electricity": ["electricity consumption", "electricity", "power usage"],
    "fuel_prices": ["petrol prices", "fuel prices", "diesel prices"],
    "solar": ["solar", "solar capacity", "renewables"],
    "psych_survey": ["psychology data", "psychology studies", "psychological research", "wellbeing survey"],
    "social_attitudes": ["social science data", "social survey", "public opinion", "attitudes survey"],
    "ml_benchmark": ["machine learning data", "ml datasets", "training data", "benchmark datasets"],
    "nlp_corpus": ["nlp dataset", "text corpus", "sentiment data", "language data"],
    "climate_indicators": ["climate data", "climate change data", "global warming", "temperature anomalies"],
    "forest_cover": ["deforestation", "forest cover", "land use"],
    "health_survey": ["health research data", "clinical data", "nutrition survey", "health survey"],
}


def keyword_phrase(rng: np.random.Generator, topic: str) -> str:
    """A searcher types keywords: common short forms ("coe prices") or a few words of the
    official name ("coe bidding results")."""
    if rng.random() < 0.5:
        return choice(rng, TOPIC_KEYWORDS[topic])
    words = [
        w
        for w in re.findall(r"[a-z0-9.'-]+", choice(rng, TOPICS[topic][1]).lower())
        if w not in ("and", "of", "by")
    ]
    if len(words) > 2 and rng.random() < 0.4:
        del words[int(rng.integers(len(words)))]
    return " ".join(words)


def render_query(rng: np.random.Generator, intent: Intent) -> str:
    if rng.random() < KEYWORD_SHARE:
        phrase = keyword_phrase(rng, intent.topic)
    else:
        phrase = choice(rng, TOPICS[intent.topic][3])
        for key, alts in SYNONYMS.items():
            if key in phrase and rng.random() < 0.4:
                phrase = phrase.replace(key, choice(rng, alts), 1)
    parts = [choice(rng, QUERY_PREFIXES)]
    if intent.granularity is not None and rng.random() < 0.5:
        parts.append(choice(rng, GRANULARITIES[intent.granularity][1]))
        parts.append(phrase)
    else:
        parts.append(phrase)
        if intent.granularity is not None:
            parts.append(choice(rng, GRANULARITIES[intent.granularity][1]))
    if intent.region is not None:
        parts.append(choice(rng, REGIONS[intent.region][2]))
    if intent.source is not None:
        parts.append(choice(rng, ["from", "on", "via", "by"]) + " " + choice(rng, SOURCES[intent.source][2]))
    parts.append(choice(rng, QUERY_SUFFIXES))
    words = " ".join(p for p in parts if p).split()
    words = [typo(rng, w) if rng.random() < 0.03 else w for w in words]
    text = " ".join(words)
    if rng.random() < 0.1:
        text = text + "?"
    return text


def tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def make_queries(
    rng: np.random.Generator, items: list[Item], n_queries: int
) -> list[tuple[str, str, dict[str, int]]]:
    region_names = list(REGIONS)
    by_topic: dict[str, list[Item]] = {}
    by_domain: dict[str, list[Item]] = {}
    for it in items:
        by_topic.setdefault(it.topic, []).append(it)
        by_domain.setdefault(it.domain, []).append(it)
    topic_keys = [t for t in TOPICS if t in by_topic]  # small catalogues may miss a topic
    item_tokens = {it.id: tokens(it.title + " " + it.description) for it in items}
    out: list[tuple[str, str, dict[str, int]]] = []
    seen: set[str] = {q[0] for q in RUNBOOK_QUERIES}  # those are held out, never generated
    while len(out) < n_queries:
        topic = topic_keys[len(out) % len(topic_keys)]
        domain = TOPICS[topic][0]
        r = rng.random()
        if r < 0.50 or (topic in SINGAPORE_ONLY and r >= 0.72):
            region: str | None = "Singapore"
        elif r < 0.72:
            region = None
        else:
            region = choice(rng, region_names[1:])
        source = None
        if rng.random() < 0.2:
            cands = sorted({it.source for it in by_topic[topic] if region is None or it.region == region})
            if cands:
                source = choice(rng, cands)
        gran = None
        if rng.random() < 0.3:
            gran = choice(rng, sorted({it.granularity for it in by_topic[topic]}))
        intent = Intent(topic, region, source, gran)
        if not any(grade(intent, it) == 4 for it in by_topic[topic]):
            continue
        text = render_query(rng, intent)
        if text in seen:
            continue
        seen.add(text)
        judged: dict[str, int] = {it.id: grade(intent, it) for it in by_topic[topic]}
        same_domain = [it for it in by_domain[domain] if it.topic != topic]
        for j in rng.permutation(len(same_domain))[:4]:
            judged[same_domain[int(j)].id] = grade(intent, same_domain[int(j)])
        others = [it for it in items if it.domain != domain]
        for j in rng.permutation(len(others))[:4]:
            judged[others[int(j)].id] = 0
        qtok = tokens(text) - {"in", "of", "the", "a", "and", "for", "on", "to", "by", "data", "how", "is"}
        hard = [it for it in others if qtok & item_tokens[it.id]]
        for j in rng.permutation(len(hard))[:2]:
            judged[hard[int(j)].id] = 0
        out.append((f"q-{len(out):04d}", text, judged))
    return out


def write(out_dir: Path, seed: int, n_items: int, n_queries: int) -> None:
    rng = np.random.default_rng(seed)
    items = make_catalog(rng, n_items)
    queries = make_queries(rng, items, n_queries)
    runbook = runbook_queries(rng, items)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "qrels").mkdir(exist_ok=True)
    with (out_dir / "corpus.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for it in items:
            rec = {
                "_id": it.id,
                "title": it.title,
                "text": it.description,
                "metadata": {
                    "source": it.source,
                    "source_name": SOURCE_NAMES[it.source],
                    "domain": it.domain,
                    "region": it.region,
                    "granularity": it.granularity,
                },
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    order = rng.permutation(len(queries))
    n_train = round(0.70 * len(queries))
    n_dev = round(0.15 * len(queries))
    split_of: dict[str, str] = {}
    for rank, idx in enumerate(order):
        qid = queries[int(idx)][0]
        split_of[qid] = "train" if rank < n_train else "dev" if rank < n_train + n_dev else "test"
    split_of.update({qid: "test" for qid, _, _ in runbook})
    queries = queries + runbook
    with (out_dir / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for qid, text, _ in queries:
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    for split in ("train", "dev", "test"):
        with (out_dir / "qrels" / f"{split}.tsv").open("w", encoding="utf-8", newline="\n") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid, _text, judged in queries:
                if split_of[qid] != split:
                    continue
                for doc_id in sorted(judged):
                    f.write(f"{qid}\t{doc_id}\t{judged[doc_id]}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory (BEIR layout)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--items", type=int, default=1200, help="catalogue size (>= 1000 for the bundle)")
    parser.add_argument("--queries", type=int, default=700, help="number of queries (>= 300 for the bundle)")
    args = parser.parse_args(argv)
    if args.items < len(TOPICS) or args.queries < 10:
        parser.error(f"--items must be >= {len(TOPICS)} and --queries >= 10")
    write(Path(args.out), args.seed, args.items, args.queries)
    print(f"wrote {args.items} items and {args.queries} queries to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
